@file:Suppress("unused")
package android.os

object Build {
    const val MODEL = "model"
    const val DEVICE = "device"
    object VERSION { const val RELEASE = "15"; const val SDK_INT = 35 }
}
