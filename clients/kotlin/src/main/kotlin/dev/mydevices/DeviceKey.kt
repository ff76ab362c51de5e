package dev.mydevices

import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.MessageDigest
import java.security.SecureRandom
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Base64

/**
 * The key a device-bound session belongs to (README "Device-bound sessions"): EC P-256, used with
 * SHA256withECDSA. Its private half should never leave the device: the Android implementation is a
 * Keystore key (clients/kotlin/android/KeystoreDeviceKey.kt), which serves the same java.security API.
 */
interface DeviceKey {
    val publicKey: ECPublicKey
    /** SHA256withECDSA over [data], DER-encoded as java.security (and the Android Keystore) return it. */
    fun signDer(data: ByteArray): ByteArray
}

/** A software key (JVM programs, tests). Keep it as long as the session. */
class JvmDeviceKey(private val keyPair: KeyPair) : DeviceKey {
    override val publicKey: ECPublicKey = keyPair.public as ECPublicKey
    override fun signDer(data: ByteArray): ByteArray =
        Signature.getInstance("SHA256withECDSA").run { initSign(keyPair.private); update(data); sign() }

    companion object {
        fun generate(): JvmDeviceKey = JvmDeviceKey(
            KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair())
    }
}

object Dpop {
    private val b64 = Base64.getUrlEncoder().withoutPadding()
    private val random = SecureRandom()

    fun base64Url(bytes: ByteArray): String = b64.encodeToString(bytes)

    /** The public key as an EC P-256 JWK (what login's devicePublicKey and a proof's header carry). */
    fun jwk(key: ECPublicKey): Map<String, String> = linkedMapOf(
        "kty" to "EC", "crv" to "P-256",
        "x" to base64Url(unsigned32(key.w.affineX)), "y" to base64Url(unsigned32(key.w.affineY)),
    )

    /** RFC 7638 thumbprint (the access token's cnf.jkt). */
    fun thumbprint(key: ECPublicKey): String {
        val j = jwk(key)
        val canonical = """{"crv":"P-256","kty":"EC","x":"${j["x"]}","y":"${j["y"]}"}"""
        return base64Url(MessageDigest.getInstance("SHA-256").digest(canonical.toByteArray()))
    }

    private fun unsigned32(n: BigInteger): ByteArray {
        val bytes = n.toByteArray()
        return when {
            bytes.size == 32 -> bytes
            bytes.size > 32 -> bytes.copyOfRange(bytes.size - 32, bytes.size) // a leading sign byte
            else -> ByteArray(32 - bytes.size) + bytes
        }
    }

    /** DER `SEQUENCE { INTEGER r, INTEGER s }` to the JWS form: r || s, 32 bytes each. */
    fun derToRaw(der: ByteArray): ByteArray {
        fun fail(): Nothing = throw IllegalArgumentException("not a DER ECDSA signature")
        var at = 0
        fun byte(): Int = if (at < der.size) der[at++].toInt() and 0xff else fail()
        fun length(): Int {
            val first = byte()
            if (first < 0x80) return first
            if (first != 0x81) fail()
            return byte()
        }
        if (byte() != 0x30) fail()
        if (length() != der.size - at) fail()
        val out = ByteArray(64)
        for (half in 0..1) {
            if (byte() != 0x02) fail()
            val len = length()
            if (len < 1 || at + len > der.size) fail()
            var int = der.copyOfRange(at, at + len)
            at += len
            while (int.size > 32 && int[0] == 0.toByte()) int = int.copyOfRange(1, int.size)
            if (int.size > 32) fail()
            int.copyInto(out, half * 32 + 32 - int.size)
        }
        if (at != der.size) fail()
        return out
    }

    /** A DPoP proof (RFC 9449) for one request: a new jti each time, the server's last nonce if any. */
    fun proof(key: DeviceKey, htm: String, htu: String, iat: Long, nonce: String?, ath: String? = null): String {
        val header = Json.stringify(mapOf("typ" to "dpop+jwt", "alg" to "ES256", "jwk" to jwk(key.publicKey)))
        val claims = linkedMapOf<String, Any?>(
            "jti" to base64Url(ByteArray(16).also(random::nextBytes)), "htm" to htm, "htu" to htu, "iat" to iat)
        nonce?.let { claims["nonce"] = it }
        ath?.let { claims["ath"] = it }
        val input = base64Url(header.toByteArray()) + "." + base64Url(Json.stringify(claims).toByteArray())
        return input + "." + base64Url(derToRaw(key.signDer(input.toByteArray())))
    }
}
