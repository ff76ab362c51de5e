@file:Suppress("unused", "UNUSED_PARAMETER")
package android.content

import android.net.Uri

abstract class Context {
    val applicationContext: Context get() = this
    val packageName: String get() = "app"
    val resources: Resources get() = Resources()
    fun getString(id: Int, vararg args: Any): String = ""
    fun <T> getSystemService(kind: Class<T>): T = throw UnsupportedOperationException()
    fun getSharedPreferences(name: String, mode: Int): SharedPreferences = throw UnsupportedOperationException()
    companion object { const val MODE_PRIVATE = 0 }
}
class Resources { fun getIdentifier(name: String, type: String, pkg: String): Int = 0 }
interface SharedPreferences {
    fun getString(key: String, default: String?): String?
    fun edit(): Editor
    interface Editor {
        fun putString(key: String, value: String?): Editor
        fun commit(): Boolean
    }
}
class Intent(context: Context, kind: Class<*>) {
    fun setData(uri: Uri): Intent = this
    fun putExtra(name: String, value: String): Intent = this
    fun putExtra(name: String, value: Int): Intent = this
    fun getStringExtra(name: String): String? = null
    fun getIntExtra(name: String, default: Int): Int = default
}
abstract class BroadcastReceiver {
    abstract fun onReceive(context: Context, intent: Intent)
    fun goAsync(): PendingResult = PendingResult()
    class PendingResult { fun finish() {} }
}
