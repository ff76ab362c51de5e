package dev.mydevices

import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking

/**
 * The core against the real local stack (run by tests/clients/test_kotlin.py, which starts the stack and
 * passes its URLs): sign up in the Auth emulator, log in bound to a device key, refresh with DPoP proofs,
 * fifty coroutines that need a token at once, a "Was that you?" alert from the FCM stand-in answered
 * "No", a session closed from another device. Prints one JSON object of what it saw.
 */
private fun env(name: String) = System.getenv(name) ?: error("$name is not set: run through tests/clients/test_kotlin.py")

private val http = UrlConnectionTransport()

/** Counts each client's requests by path, and the refreshes that carried a DPoP proof. */
private class Counting(val inner: HttpTransport = http) : HttpTransport {
    val byPath = ConcurrentHashMap<String, AtomicInteger>()
    val refreshesWithProof = AtomicInteger()
    override suspend fun send(request: HttpRequest): HttpResponse {
        val path = java.net.URI(request.url).path
        byPath.computeIfAbsent(path) { AtomicInteger() }.incrementAndGet()
        if (path == "/v1/sessions/refresh" && request.headers["DPoP"] != null) refreshesWithProof.incrementAndGet()
        return inner.send(request)
    }
    fun count(path: String) = byPath[path]?.get() ?: 0
}

private suspend fun post(url: String, body: Map<String, Any?>): Map<String, Any?> {
    val answer = http.send(HttpRequest("POST", url, mapOf("Content-Type" to "application/json"), Json.stringify(body)))
    check(answer.status == 200) { "$url answered ${answer.status}: ${answer.body}" }
    return Json.parseObject(answer.body)
}

@Suppress("UNCHECKED_CAST")
private suspend fun pushesTo(fcm: String, token: String, action: String): List<Map<String, String>> {
    val all = Json.parseObject(http.send(HttpRequest("GET", "$fcm/_standin/messages", emptyMap(), null)).body)
    return (all["messages"] as List<Map<String, Any?>>).map { it["message"] as Map<String, Any?> }
        .filter { it["token"] == token && (it["data"] as Map<String, Any?>?)?.get("action") == action }
        .map { it["data"] as Map<String, String> }
}

private suspend fun <T> until(what: String, seconds: Int = 20, probe: suspend () -> T?): T {
    repeat(seconds * 10) {
        probe()?.let { return it }
        delay(100)
    }
    error("timed out waiting for $what")
}

private class Device(val name: String, api: String, clock: () -> Long) {
    val transport = Counting()
    val key = JvmDeviceKey.generate()
    val client = MyDevicesClient(api, MemoryTokenStore(), key, transport, clock, refreshMarginSeconds = 0)
    val signedOut = mutableListOf<String>()
    val pushToken = "tok-kotlin-$name-${UUID.randomUUID()}"
    init { client.onSignedOut { signedOut.add(it.reason) } }
}

fun main() = runBlocking {
    val api = env("MYDEVICES_API_URL")
    val auth = env("MYDEVICES_AUTH_URL") + "/identitytoolkit.googleapis.com/v1"
    val fcm = env("MYDEVICES_FCM_URL")
    val offset = env("MYDEVICES_CLOCK_OFFSET").toLong() // the stack's clock, which its tokens' times follow
    val clock = { System.currentTimeMillis() / 1000 + offset }
    val out = linkedMapOf<String, Any?>()

    val idToken = post("$auth/accounts:signUp?key=any", mapOf("email" to "kotlin-${UUID.randomUUID()}@example.com",
        "password" to "correct-horse-9", "returnSecureToken" to true))["idToken"] as String
    val phone = Device("phone", api, clock)
    val pixel = Device("pixel", api, clock)
    val intruder = Device("intruder", api, clock)
    // Every login first: after a closure, a login needs a newer Firebase sign-in (README "Trust rules").
    val phoneLogin = phone.client.login(idToken, DeviceInfo("Kotlin phone", "android", "Pixel 9", "15", "1.0"),
        PushRegistration(phone.pushToken))
    val pixelLogin = pixel.client.login(idToken, DeviceInfo("Pixel 8", "android"), PushRegistration(pixel.pushToken))
    val intruderLogin = intruder.client.login(idToken, DeviceInfo("Galaxy S24", "android"), PushRegistration(intruder.pushToken))
    out["bound"] = listOf(phoneLogin.session.deviceBound, pixelLogin.session.deviceBound, intruderLogin.session.deviceBound)

    // Refresh with a proof: wait for the short-lived access token to run out, then call.
    suspend fun expire(device: Device) {
        val expiresAt = device.client.stored().accessTokenExpiresAt!!
        while (clock() < expiresAt) delay(100)
    }
    expire(phone)
    val listed = phone.client.listSessions()
    out["listed"] = listed.sessions.map { it.deviceName }
    out["firstRefresh"] = mapOf("refreshes" to phone.transport.count("/v1/sessions/refresh"),
        "withProof" to phone.transport.refreshesWithProof.get())

    // Fifty coroutines that all need a token when it has run out: one refresh.
    expire(phone)
    val before = phone.transport.count("/v1/sessions/refresh")
    val started = System.nanoTime()
    val results = (1..50).map { async(Dispatchers.IO) { phone.client.listSessions().sessions.size } }.awaitAll()
    out["concurrent"] = mapOf("calls" to results.size, "ok" to results.count { it == 3 },
        "refreshes" to phone.transport.count("/v1/sessions/refresh") - before,
        "millis" to (System.nanoTime() - started) / 1_000_000)

    // "Was that you?" about the intruder, as the FCM stand-in received it; answered No.
    val intruderSid = intruderLogin.session.sessionId
    val alertData = until("the alert push") {
        pushesTo(fcm, phone.pushToken, "new_login_alert").firstOrNull { it["newSessionId"] == intruderSid }
    }
    val alert = phone.client.handlePush(alertData) as PushEvent.NewLoginAlert
    val notification = alert.notification
    out["alert"] = mapOf("text" to alert.text, "locArgs" to alert.locArgs, "notificationId" to notification.id,
        "actions" to notification.actions.map { it.uri }, "timeoutMillis" to notification.timeoutAfterMillis(clock() * 1000))
    val answer = phone.client.respondToAlert(alert.actionToken, AlertAnswer.NO)
    out["answer"] = mapOf("closed" to (answer.closedSessionIds == listOf(intruderSid)), "advice" to answer.advice)
    val logoutData = until("the intruder's force_logout") { pushesTo(fcm, intruder.pushToken, "force_logout").firstOrNull() }
    out["intruderPush"] = (intruder.client.handlePush(logoutData) as? PushEvent.ForceLogout)?.reason
    out["intruderSignedOut"] = intruder.signedOut.toList()
    out["intruderAfter"] = try { intruder.client.listSessions(); "still signed in" } catch (e: MyDevicesException) { e.code }

    // The Pixel closed from the phone: its next call is 401 session_revoked, one signedOut, the device id kept.
    phone.client.closeSession(pixelLogin.session.sessionId)
    val pixelDevice = pixel.client.stored().deviceId
    out["pixelCall"] = try { pixel.client.listSessions(); "no error" } catch (e: MyDevicesException) { e::class.simpleName + " " + e.code }
    out["pixelSignedOut"] = pixel.signedOut.toList()
    out["pixelKeptDeviceId"] = pixel.client.stored().let { !it.signedIn && it.deviceId == pixelDevice }
    out["remaining"] = phone.client.listSessions().sessions.map { it.deviceName }
    phone.client.logout()
    out["phoneSignedOut"] = phone.signedOut.toList()
    out["phoneRequests"] = phone.transport.byPath.mapValues { it.value.get() }.toSortedMap()
    println(Json.stringify(out))
}
