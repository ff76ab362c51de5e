// NOT COMPILED HERE against Android: this machine has no Android SDK (see clients/kotlin/android/README.md);
// its calls into the core are type-checked against stand-ins of the Android APIs (tests/clients/android_stubs).
// The decisions live in the tested core (clients/kotlin/src/main); this file only wires Android objects to it.
package dev.mydevices.android

import android.content.Context
import android.os.Build
import dev.mydevices.DeviceInfo
import dev.mydevices.MyDevicesClient
import dev.mydevices.SignedOut
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.Dispatchers

/** The app's one client: call [init] in Application.onCreate. */
object MyDevices {
    lateinit var client: MyDevicesClient
        private set

    /** For work that must outlive a screen (a push token update, an answer from a notification). */
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    fun init(context: Context, baseUrl: String, onSignedOut: (SignedOut) -> Unit) {
        val app = context.applicationContext
        client = MyDevicesClient(baseUrl, KeystoreTokenStore(app), KeystoreDeviceKey.getOrCreate())
        client.onSignedOut(onSignedOut)
        AlertNotifier.createChannel(app)
    }

    /** This device as login describes it. */
    fun deviceInfo(appVersion: String) = DeviceInfo(
        name = Build.MODEL, platform = "android", model = Build.DEVICE,
        osVersion = Build.VERSION.RELEASE, appVersion = appVersion,
    )
}
