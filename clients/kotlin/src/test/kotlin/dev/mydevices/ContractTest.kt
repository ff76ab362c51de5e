package dev.mydevices

import java.io.File
import java.io.IOException
import java.security.Signature
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking

/**
 * The core over the shared client contract (the JSON files of clients/contract) and a few unit checks of its own.
 * JUnit is not in the Kotlin distribution, so this is a main: `ContractTestKt <contract dir>`; it prints
 * one line per failure and closes with "N passed, N failed, N skipped" (tests/clients/test_kotlin.py).
 */
private const val NOW = 1_800_000_000L

@Suppress("UNCHECKED_CAST")
private fun Any?.m(): Map<String, Any?> = this as Map<String, Any?>
@Suppress("UNCHECKED_CAST")
private fun Any?.l(): List<Any?> = this as List<Any?>

private fun camel(code: String) = code.split('_').joinToString("") { it.replaceFirstChar(Char::uppercase) }

private fun subset(actual: Any?, expected: Any?, where: String) {
    if (expected is Map<*, *>) {
        assertTrue(actual is Map<*, *>, "$where: an object")
        for ((k, v) in expected) subset(actual[k], v, "$where.$k")
    } else {
        assertEquals(expected, actual, where)
    }
}

private val decoder = Base64.getUrlDecoder()

/** Checks a DPoP proof: header, claims, and the raw r||s signature under the device key. */
private fun checkProof(proof: String?, key: DeviceKey, want: Map<String, Any?>) {
    assertNotNull(proof, "a DPoP header")
    val (h, p, s) = proof.split('.').also { assertEquals(3, it.size, "a JWS") }
    val header = Json.parseObject(String(decoder.decode(h)))
    assertEquals("dpop+jwt", header["typ"])
    assertEquals("ES256", header["alg"])
    assertEquals(Dpop.jwk(key.publicKey), header["jwk"])
    val claims = Json.parseObject(String(decoder.decode(p)))
    for ((k, v) in want) assertEquals(v, claims[k], "proof claim $k")
    assertEquals(NOW, claims["iat"])
    assertTrue((claims["jti"] as String).length >= 16, "jti")
    val raw = decoder.decode(s)
    assertEquals(64, raw.size, "raw r||s")
    val verifier = Signature.getInstance("SHA256withECDSAinP1363Format")
    verifier.initVerify(key.publicKey)
    verifier.update("$h.$p".toByteArray())
    assertTrue(verifier.verify(raw), "the proof verifies under the device key")
}

private class ScriptedTransport(val base: String, val exchanges: List<Map<String, Any?>>, val key: DeviceKey) : HttpTransport {
    var next = 0
    val proofs = mutableListOf<String>()
    override suspend fun send(request: HttpRequest): HttpResponse {
        if (next >= exchanges.size) fail("an unexpected request: ${request.method} ${request.url}")
        val exchange = exchanges[next++]
        val want = exchange["request"].m()
        assertEquals(base + want["path"], request.url, "request $next: url")
        assertEquals(want["method"], request.method, "request $next: method")
        val headers = request.headers.mapKeys { it.key.lowercase() }
        (want["headers"] as Map<*, *>?)?.forEach { (k, v) -> assertEquals(v, headers[(k as String).lowercase()], "request $next: $k") }
        want["body"]?.let { subset(Json.parse(request.body ?: "null"), it, "request $next: body") }
        if (want["deviceKey"] == true) {
            assertEquals(Dpop.jwk(key.publicKey), Json.parseObject(request.body!!)["devicePublicKey"], "devicePublicKey")
        }
        val dpop = want["dpop"]
        if (dpop != null) checkProof(headers["dpop"], key, dpop.m()).also { proofs.add(headers["dpop"]!!) }
        else assertNull(headers["dpop"], "request $next: no DPoP header")
        val response = exchange["response"].m()
        if (response["network"] == true) throw IOException("the answer was lost")
        val respHeaders = (response["headers"] as Map<*, *>? ?: emptyMap<String, String>())
            .entries.associate { (it.key as String).lowercase() to it.value as String }
        return HttpResponse((response["status"] as Long).toInt(), respHeaders, Json.stringify(response["body"]))
    }
}

private fun summary(op: String, result: Any?): Any? = when (op) {
    "login" -> mapOf("sessionId" to (result as LoginResult).session.sessionId)
    "listSessions" -> (result as SessionList).let {
        mapOf("sessionIds" to it.sessions.map(DeviceSession::sessionId), "closeOthersAllowedAt" to it.closeOthersAllowedAt,
            "autoCloseAfterDays" to it.autoCloseAfterDays?.toLong())
    }
    "reauthenticate" -> mapOf("authTime" to result)
    "setAutoClose" -> (result as AutoCloseResult).let {
        mapOf("autoCloseAfterDays" to it.autoCloseAfterDays?.toLong(), "closed" to it.closed.toLong())
    }
    "current" -> mapOf("sessionId" to (result as DeviceSession).sessionId)
    "exportAccount" -> (result as AccountExport).let {
        mapOf("uid" to it.uid, "documentPaths" to it.documents.map { doc -> doc.path })
    }
    "revokeOthers" -> mapOf("revoked" to (result as Int).toLong())
    "respondToAlert" -> (result as AlertResponse).let {
        mapOf("answer" to it.answer, "status" to it.status, "closedSessionIds" to it.closedSessionIds, "advice" to it.advice)
    }
    "listActivity" -> (result as ActivityPage).let {
        mapOf("ids" to it.activity.map(ActivityEntry::id), "texts" to it.activity.map(ActivityEntry::text),
            "closedByKinds" to it.activity.map { e -> e.closedBy?.kind }, "nextCursor" to it.nextCursor)
    }
    else -> null
}

private fun runApi(contract: Map<String, Any?>, vector: Map<String, Any?>) = runBlocking {
    val base = contract["baseUrl"] as String
    val start = contract["states"].m()[vector["start"]]
    val key = JvmDeviceKey.generate()
    val transport = ScriptedTransport(base, vector["exchanges"].l().map { it.m() }, key)
    val client = MyDevicesClient(base, MemoryTokenStore(Json.stringify(start)), key, transport, clock = { NOW })
    val events = mutableListOf<String>()
    client.onSignedOut { events.add(it.reason) }
    val call = vector["call"].m()
    val op = call["op"] as String
    val expect = vector["expect"].m()
    var result: Any? = null
    var error: MyDevicesException? = null
    try {
        result = when (op) {
            "login" -> client.login(call["idToken"] as String, call["device"].m().let {
                DeviceInfo(it["name"] as String, it["platform"] as String, it["model"] as String?, it["osVersion"] as String?,
                    it["appVersion"] as String?)
            }, call["push"]?.m()?.let { PushRegistration(it["token"] as String, it["provider"] as String) })
            "listSessions" -> client.listSessions()
            "current" -> client.current()
            "closeSession" -> client.closeSession(call["sessionId"] as String)
            "revokeOthers" -> client.revokeOthers()
            "updatePushToken" -> client.updatePushToken(call["token"] as String)
            "reauthenticate" -> client.reauthenticate(call["idToken"] as String)
            "setAutoClose" -> client.setAutoClose(AutoClose.of((call["afterDays"] as Long?)?.toInt()))
            "logout" -> client.logout()
            "exportAccount" -> client.exportAccount()
            "listActivity" -> client.listActivity((call["limit"] as Long?)?.toInt() ?: 20, call["cursor"] as String?)
            "respondToAlert" -> client.respondToAlert(call["actionToken"] as String,
                if (call["answer"] == "no") AlertAnswer.NO else AlertAnswer.YES)
            else -> fail("unknown op $op")
        }
    } catch (e: MyDevicesException) {
        error = e
    }
    val wantError = expect["error"]?.m()
    if (wantError != null) {
        assertNotNull(error, "an error")
        assertEquals(camel(wantError["code"] as String), error::class.simpleName, "the sealed type")
        val got = linkedMapOf<String, Any?>("status" to error.status.toLong(), "code" to error.code)
        if ("retryAfter" in wantError) got["retryAfter"] = error.retryAfter
        if ("allowedAt" in wantError) got["allowedAt"] = error.allowedAt
        if ("reason" in wantError) got["reason"] = error.reason
        if ("maxAge" in wantError) got["maxAge"] = error.maxAge
        assertEquals(wantError, got)
        if ("retryAfter" !in wantError) assertNull(error.retryAfter)
    } else {
        assertNull(error, "no error (got ${error?.code})")
        expect["result"]?.let { assertEquals(it, summary(op, result)) }
    }
    assertEquals(listOfNotNull(expect["signedOut"]), events, "signedOut events")
    val stored = client.stored()
    val want = expect["stored"].m()
    assertEquals(want["signedIn"], stored.signedIn, "stored: signedIn")
    assertEquals(want["sessionId"], stored.sessionId, "stored: sessionId")
    assertEquals(want["deviceId"], stored.deviceId, "stored: deviceId")
    want["deviceBound"]?.let { assertEquals(it, stored.deviceBound, "stored: deviceBound") }
    assertEquals(transport.exchanges.size, transport.next, "requests made")
}

private fun parsedMap(e: PushEvent?): Map<String, Any?>? = when (e) {
    null -> null
    is PushEvent.ForceLogout -> mapOf("type" to "forceLogout", "sessionId" to e.sessionId, "reason" to e.reason)
    is PushEvent.NewLoginAlert -> mapOf("type" to "newLoginAlert", "sessionId" to e.sessionId, "newSessionId" to e.newSessionId,
        "actionToken" to e.actionToken, "title" to e.title, "text" to e.text, "locKey" to e.locKey, "locArgs" to e.locArgs,
        "deviceName" to e.deviceName, "location" to e.location, "expiresAt" to e.expiresAt)
}

private fun notificationMap(n: AlertNotification) = mapOf(
    "tag" to n.tag, "id" to n.id.toLong(), "channelId" to n.channelId, "category" to n.category, "title" to n.title,
    "titleLocKey" to n.titleLocKey, "body" to n.body, "bodyLocKey" to n.bodyLocKey, "bodyLocArgs" to n.bodyLocArgs,
    "expiresAt" to n.expiresAt,
    "actions" to n.actions.map {
        mapOf("answer" to it.answer.wire, "identifier" to it.identifier, "titleKey" to it.titleKey, "title" to it.title,
            "destructive" to it.destructive, "authenticationRequired" to it.authenticationRequired, "uri" to it.uri)
    },
)

private fun runPush(vector: Map<String, Any?>) {
    val data = vector["message"].m()["data"].m().mapValues { it.value as String }
    val expect = vector["expect"].m()
    val parsed = PushEvent.parse(data)
    assertEquals(expect["parsed"], parsedMap(parsed), "parsed")
    if (parsed is PushEvent.NewLoginAlert) assertEquals(expect["notification"], notificationMap(parsed.notification), "notification")
    val current = vector["currentSessionId"] as String?
    val store = MemoryTokenStore(StoredState(deviceId = "d", sessionId = current, accessToken = "a", refreshToken = "r").toJson())
    val client = MyDevicesClient("https://api.example.test", store, transport = { fail("no request") })
    val events = mutableListOf<String>()
    client.onSignedOut { events.add(it.reason) }
    val handled = client.handlePush(data)
    val type = when (handled) { null -> null; is PushEvent.ForceLogout -> "forceLogout"; is PushEvent.NewLoginAlert -> "newLoginAlert" }
    assertEquals(expect["handled"], mapOf("event" to type, "signedOut" to events.firstOrNull()), "handled")
    assertTrue(events.size <= 1)
}

private class ScriptedApi : SessionsApi {
    val calls = ArrayDeque<Map<String, Any?>>()
    private fun next(op: String): Map<String, Any?> {
        val call = calls.removeFirstOrNull() ?: fail("an unexpected call: $op")
        assertEquals(call["op"], op, "the call")
        call["error"]?.m()?.let { e ->
            throw MyDevicesException.of(ErrorAnswer((e["status"] as Long).toInt(), e["code"] as String, "",
                details = e - "status" - "code"))
        }
        return call
    }
    override suspend fun listSessions() = SessionList.of(next("listSessions")["result"].m())
    override suspend fun closeSession(sessionId: String) { assertEquals(next("closeSession")["sessionId"], sessionId) }
    override suspend fun revokeOthers() = (next("revokeOthers")["result"].m()["revoked"] as Long).toInt()
}

private fun stateMap(s: ActiveSessionsState) = mapOf(
    "title" to s.title,
    "rows" to s.rows.map {
        mapOf("sessionId" to it.sessionId, "name" to it.name, "isCurrent" to it.isCurrent, "location" to it.location,
            "deviceBound" to it.deviceBound, "close" to it.close.name.lowercase())
    },
    "closeOthers" to if (s.closeOthers) "shown" else "hidden", "closeOthersLabel" to s.closeOthersLabel,
    "allowedAt" to s.allowedAt, "onlyThisDevice" to s.onlyThisDevice,
    "confirming" to s.confirming?.let {
        mapOf("kind" to if (it.kind == Confirmation.Kind.ONE) "one" else "others", "sessionId" to it.sessionId,
            "question" to it.question, "confirm" to it.confirm, "cancel" to it.cancel)
    },
    "error" to s.error?.let { mapOf("code" to it.code, "allowedAt" to it.allowedAt) },
)

private fun runScreen(vector: Map<String, Any?>) = runBlocking {
    val api = ScriptedApi()
    val model = ActiveSessionsModel(api)
    for (step in vector["steps"].l().map { it.m() }) {
        api.calls.addAll(step["calls"].l().map { it.m() })
        val action = step["do"]
        when (action) {
            "load" -> model.load()
            "requestClose" -> model.requestClose(step["sessionId"] as String)
            "requestCloseOthers" -> model.requestCloseOthers()
            "confirm" -> model.confirm()
            "cancel" -> model.cancel()
            else -> fail("unknown action $action")
        }
        assertTrue(api.calls.isEmpty(), "$action: every scripted call made")
        assertEquals(step["expect"], stateMap(model.state.value), "after $action")
        assertTrue(!model.state.value.busy)
    }
}

/** Checks of the core's own parts that the vectors do not reach. */
private val unitChecks: List<Pair<String, () -> Unit>> = listOf(
    "json: nested values, escapes and numbers round-trip" to {
        val text = """{"a":[1,-2.5,true,null,"x\"\\\n\u00e9\ud83d\ude00"],"b":{}}"""
        val v = Json.parseObject(text)
        assertEquals(listOf(1L, -2.5, true, null, "x\"\\\n\u00e9\ud83d\ude00"), v["a"])
        assertEquals(v, Json.parseObject(Json.stringify(v)))
    },
    "json: malformed input is an error, never a partial value" to {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "01", "1 2", "\"\\x\"", "\"\\ud800\"", "nul", "[" .repeat(100) + "]".repeat(100))) {
            assertFailsWith<Json.ParseException>(bad) { Json.parse(bad) }
        }
    },
    "der to raw: real signatures verify as r||s" to {
        val key = JvmDeviceKey.generate()
        repeat(50) {
            val data = "message $it".toByteArray()
            val raw = Dpop.derToRaw(key.signDer(data))
            val v = Signature.getInstance("SHA256withECDSAinP1363Format").apply { initVerify(key.publicKey); update(data) }
            assertTrue(v.verify(raw))
        }
        assertFailsWith<IllegalArgumentException> { Dpop.derToRaw(byteArrayOf(0x30, 0x02, 0x02, 0x00)) }
    },
    "jwk: 32-byte coordinates, and the RFC 7638 thumbprint is 43 characters" to {
        repeat(20) {
            val jwk = Dpop.jwk(JvmDeviceKey.generate().publicKey)
            assertEquals(32, decoder.decode(jwk["x"]).size)
            assertEquals(32, decoder.decode(jwk["y"]).size)
        }
        assertEquals(43, Dpop.thumbprint(JvmDeviceKey.generate().publicKey).length)
    },
    "a notification's timeout runs to the action token's expiry, never below zero" to {
        val alert = PushEvent.NewLoginAlert("s", "n", "t", "New sign-in", "", null, emptyList(), null, null, 1000)
        assertEquals(400_000L, alert.notification.timeoutAfterMillis(600_000))
        assertEquals(0L, alert.notification.timeoutAfterMillis(2_000_000))
    },
    "stored state survives a garbled store as signed out" to {
        assertEquals(StoredState(), StoredState.fromJson("not json"))
    },
    "fifty coroutines needing a token make one refresh" to {
        runBlocking {
            var refreshes = 0
            val transport = HttpTransport { request ->
                if (request.url.endsWith("/refresh")) {
                    refreshes++
                    kotlinx.coroutines.delay(20)
                    HttpResponse(200, emptyMap(), """{"accessToken":"at-2","refreshToken":"rt-2","accessTokenExpiresAt":4102444800}""")
                } else {
                    assertEquals("Bearer at-2", request.headers["Authorization"])
                    HttpResponse(200, emptyMap(), """{"sessions":[],"closeOthersAllowedAt":null}""")
                }
            }
            val store = MemoryTokenStore(StoredState("d", "s", "at-1", "rt-1", 1).toJson())
            val client = MyDevicesClient("https://x.test", store, null, transport, clock = { NOW })
            (1..50).map { async(kotlinx.coroutines.Dispatchers.Default) { client.listSessions() } }.awaitAll()
            assertEquals(1, refreshes)
        }
    },
)

fun main(args: Array<String>) {
    val dir = File(args.firstOrNull() ?: "clients/contract")
    var passed = 0
    var failed = 0
    var skipped = 0
    fun check(kind: String, name: String, body: () -> Unit) {
        try {
            body()
            passed++
        } catch (e: Throwable) {
            failed++
            println("FAIL $kind: $name: ${e.message ?: e}")
        }
    }
    val api = Json.parseObject(File(dir, "api.json").readText())
    val capabilities = setOf("dpop", "retry_lost_refresh", "native")
    for (v in api["vectors"].l().map { it.m() }) {
        if ((v["requires"] as List<*>? ?: emptyList<Any>()).any { it !in capabilities }) { skipped++; continue }
        check("api", v["name"] as String) { runApi(api, v) }
    }
    for (v in Json.parseObject(File(dir, "push.json").readText())["vectors"].l().map { it.m() }) {
        check("push", v["name"] as String) { runPush(v) }
    }
    for (v in Json.parseObject(File(dir, "sessions_screen.json").readText())["vectors"].l().map { it.m() }) {
        check("screen", v["name"] as String) { runScreen(v) }
    }
    for ((name, body) in unitChecks) check("unit", name, body)
    println("$passed passed, $failed failed, $skipped skipped")
    if (failed > 0) kotlin.system.exitProcess(1)
}
