// NOT COMPILED HERE against Android: this machine has no Android SDK (see clients/kotlin/android/README.md);
// its calls into the core are type-checked against stand-ins of the Android APIs (tests/clients/android_stubs).
package dev.mydevices.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import dev.mydevices.DeviceKey
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec

/** The session's device key in the Android Keystore (StrongBox where there is one): it never leaves
 *  the device. The core does the rest (JWK, DPoP, DER to r||s) with the same java.security calls. */
class KeystoreDeviceKey private constructor(private val entry: KeyStore.PrivateKeyEntry) : DeviceKey {
    override val publicKey: ECPublicKey = entry.certificate.publicKey as ECPublicKey

    override fun signDer(data: ByteArray): ByteArray =
        Signature.getInstance("SHA256withECDSA").run { initSign(entry.privateKey as PrivateKey); update(data); sign() }

    companion object {
        private const val ALIAS = "mydevices.device-key"

        fun getOrCreate(): KeystoreDeviceKey {
            val store = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
            (store.getEntry(ALIAS, null) as? KeyStore.PrivateKeyEntry)?.let { return KeystoreDeviceKey(it) }
            fun generate(strongBox: Boolean) {
                val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_SIGN)
                    .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                    .setDigests(KeyProperties.DIGEST_SHA256)
                if (strongBox && Build.VERSION.SDK_INT >= 28) spec.setIsStrongBoxBacked(true)
                KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore").run {
                    initialize(spec.build())
                    generateKeyPair()
                }
            }
            try {
                generate(strongBox = true)
            } catch (e: StrongBoxUnavailableException) {
                generate(strongBox = false)
            }
            return KeystoreDeviceKey(store.getEntry(ALIAS, null) as KeyStore.PrivateKeyEntry)
        }
    }
}
