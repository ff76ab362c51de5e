@file:Suppress("unused", "UNUSED_PARAMETER")
package com.google.firebase.messaging

import android.content.Context

open class FirebaseMessagingService : Context() {
    open fun onMessageReceived(message: RemoteMessage) {}
    open fun onNewToken(token: String) {}
}
class RemoteMessage { val data: Map<String, String> = emptyMap() }
