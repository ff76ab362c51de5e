// NOT COMPILED HERE against Android: this machine has no Android SDK (see clients/kotlin/android/README.md);
// its calls into the core are type-checked against stand-ins of the Android APIs (tests/clients/android_stubs).
package dev.mydevices.android

import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import dev.mydevices.PushEvent
import kotlinx.coroutines.launch

/** Hands every data message to the core. Declare it in the manifest (MESSAGING_EVENT intent filter),
 *  or call [handle] from the app's own FirebaseMessagingService. */
open class MyDevicesMessagingService : FirebaseMessagingService() {
    override fun onMessageReceived(message: RemoteMessage) {
        handle(message.data)
    }

    fun handle(data: Map<String, String>) {
        when (val event = MyDevices.client.handlePush(data)) {
            is PushEvent.NewLoginAlert -> AlertNotifier.show(this, event)
            // The core has cleared the tokens and told onSignedOut("force_logout"): the app's listener
            // signs out of Firebase, clears Firestore's cache and shows sign-in.
            is PushEvent.ForceLogout, null -> Unit
        }
    }

    override fun onNewToken(token: String) {
        MyDevices.scope.launch {
            if (MyDevices.client.stored().signedIn) {
                runCatching { MyDevices.client.updatePushToken(token) }
            }
        }
    }
}
