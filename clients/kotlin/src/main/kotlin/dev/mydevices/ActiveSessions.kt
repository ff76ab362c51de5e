package dev.mydevices

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/** A row's close button: none on this device's own row (it leaves with Sign out), hidden while canClose is false. */
enum class CloseButton { NONE, ENABLED, HIDDEN }

data class SessionRow(
    val sessionId: String,
    val name: String,
    val isCurrent: Boolean,
    val location: String,
    val deviceBound: Boolean,
    val close: CloseButton,
    val session: DeviceSession,
)

data class Confirmation(val kind: Kind, val sessionId: String?, val question: String, val confirm: String, val cancel: String) {
    enum class Kind { ONE, OTHERS }
}

data class ScreenError(val code: String, val allowedAt: String?)

/** Everything the Active sessions screen shows; a Compose or View UI renders it as it is. */
data class ActiveSessionsState(
    val title: String = "Active sessions",
    val rows: List<SessionRow> = emptyList(),
    /** "Sign out from all other sessions": more than one other session, and this one may close them. */
    val closeOthers: Boolean = false,
    val closeOthersLabel: String = "Sign out from all other sessions",
    /** When this (fresh) session may start closing others; show it while set. */
    val allowedAt: String? = null,
    val onlyThisDevice: Boolean = false,
    val confirming: Confirmation? = null,
    val error: ScreenError? = null,
    val busy: Boolean = false,
)

/**
 * The sessions screen's rules (the seed's ActiveSessionsScreen, and the web page's confirmation step)
 * as a plain state holder: [load], then [requestClose] / [requestCloseOthers] ask first, [confirm]
 * sends, [cancel] sends nothing. Call the suspend functions from the UI's scope (viewModelScope).
 */
class ActiveSessionsModel(private val api: SessionsApi) {
    private val mutable = MutableStateFlow(ActiveSessionsState())
    val state: StateFlow<ActiveSessionsState> = mutable.asStateFlow()

    suspend fun load() {
        mutable.value = mutable.value.copy(busy = true)
        try {
            show(api.listSessions())
        } catch (e: MyDevicesException) {
            mutable.value = mutable.value.copy(busy = false, error = ScreenError(e.code, e.allowedAt))
        }
    }

    private fun show(list: SessionList) {
        val others = list.sessions.count { !it.isCurrentDevice }
        mutable.value = ActiveSessionsState(
            rows = list.sessions.map { s ->
                SessionRow(
                    sessionId = s.sessionId,
                    name = s.deviceName?.takeIf { it.isNotEmpty() } ?: "Unnamed device",
                    isCurrent = s.isCurrentDevice,
                    location = s.location?.takeIf { it.isNotEmpty() } ?: "Location unknown",
                    deviceBound = s.deviceBound,
                    close = when {
                        s.isCurrentDevice -> CloseButton.NONE
                        s.canClose == false -> CloseButton.HIDDEN
                        else -> CloseButton.ENABLED
                    },
                    session = s,
                )
            },
            closeOthers = others > 1 && list.closeOthersAllowedAt == null,
            allowedAt = list.closeOthersAllowedAt,
            onlyThisDevice = others == 0,
        )
    }

    fun requestClose(sessionId: String) {
        val row = mutable.value.rows.firstOrNull { it.sessionId == sessionId } ?: return
        if (row.close != CloseButton.ENABLED) return
        mutable.value = mutable.value.copy(error = null, confirming = Confirmation(
            Confirmation.Kind.ONE, sessionId, "Close the session on \u201c${row.name}\u201d?", "Close", "Cancel"))
    }

    fun requestCloseOthers() {
        val current = mutable.value
        if (!current.closeOthers) return
        val others = current.rows.count { !it.isCurrent }
        mutable.value = current.copy(error = null, confirming = Confirmation(
            Confirmation.Kind.OTHERS, null, "Close all $others other sessions?", "Close all", "Cancel"))
    }

    fun cancel() {
        mutable.value = mutable.value.copy(confirming = null)
    }

    suspend fun confirm() {
        val asked = mutable.value.confirming ?: return
        mutable.value = mutable.value.copy(confirming = null, busy = true)
        try {
            when (asked.kind) {
                Confirmation.Kind.ONE -> api.closeSession(asked.sessionId!!)
                Confirmation.Kind.OTHERS -> api.revokeOthers()
            }
        } catch (e: MyDevicesException.NotFound) {
            // closed elsewhere meanwhile: the list below shows it gone
        } catch (e: MyDevicesException) {
            mutable.value = mutable.value.copy(busy = false, error = ScreenError(e.code, e.allowedAt))
            return
        }
        load()
    }
}
