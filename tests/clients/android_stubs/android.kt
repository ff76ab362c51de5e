@file:Suppress("unused", "UNUSED_PARAMETER")
package android

object Manifest { object permission { const val POST_NOTIFICATIONS = "android.permission.POST_NOTIFICATIONS" } }
object R { object drawable { const val stat_sys_warning = 17301543 } }
