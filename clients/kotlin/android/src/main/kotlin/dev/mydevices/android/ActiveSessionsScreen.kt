// NOT COMPILED HERE: this machine has no Android SDK or Compose runtime (see clients/kotlin/android/README.md).
// It renders the core's ActiveSessionsState as it is: the rules are in ActiveSessionsModel (tested).
package dev.mydevices.android

import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import dev.mydevices.ActiveSessionsModel
import dev.mydevices.CloseButton
import dev.mydevices.SessionRow
import kotlinx.coroutines.launch

@Composable
fun ActiveSessionsScreen(model: ActiveSessionsModel) {
    val state by model.state.collectAsState()
    val scope = rememberCoroutineScope()
    LaunchedEffect(model) { model.load() }
    LazyColumn {
        item { Text(state.title, style = MaterialTheme.typography.headlineSmall, modifier = Modifier.padding(16.dp)) }
        state.allowedAt?.let { item { Text("You can close other sessions from $it.", modifier = Modifier.padding(16.dp)) } }
        state.error?.let { item { Text(errorText(it.code, it.allowedAt), color = MaterialTheme.colorScheme.error) } }
        items(state.rows, key = { it.sessionId }) { row -> SessionCard(row) { model.requestClose(row.sessionId) } }
        if (state.closeOthers) {
            item { TextButton(onClick = model::requestCloseOthers) { Text(state.closeOthersLabel) } }
        }
    }
    state.confirming?.let { asked ->
        AlertDialog(
            onDismissRequest = model::cancel,
            text = { Text(asked.question) },
            confirmButton = { TextButton(onClick = { scope.launch { model.confirm() } }) { Text(asked.confirm) } },
            dismissButton = { TextButton(onClick = model::cancel) { Text(asked.cancel) } },
        )
    }
}

@Composable
private fun SessionCard(row: SessionRow, onClose: () -> Unit) {
    Card(modifier = Modifier.padding(horizontal = 16.dp, vertical = 4.dp)) {
        Row(modifier = Modifier.padding(12.dp)) {
            Column(modifier = Modifier.weight(1f)) {
                Text(row.name, style = MaterialTheme.typography.titleMedium)
                Text(row.location)
                if (row.isCurrent) Text("This device")
                if (row.deviceBound) Text("Device bound")
            }
            if (row.close == CloseButton.ENABLED) TextButton(onClick = onClose) { Text("Close") }
        }
    }
}

private fun errorText(code: String, allowedAt: String?) = when (code) {
    "session_too_new" -> "This session is too new to close others. You can from $allowedAt."
    else -> "That did not work ($code). Try again."
}
