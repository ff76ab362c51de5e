// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md). These XCTest
// tests run MyDevicesKit over the shared client contract (clients/contract), as the Kotlin and JS tests do.
import CryptoKit
import Foundation
import XCTest
@testable import MyDevicesKit

private let contract = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("contract")
private let now = 1_800_000_000
private let capabilities: Set<String> = ["dpop", "retry_lost_refresh", "native"]

private func load(_ name: String) throws -> [String: Any] {
    let data = try Data(contentsOf: contract.appendingPathComponent(name))
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

private func same(_ a: Any?, _ b: Any?) -> Bool {
    switch (a, b) {
    case (nil, nil), (nil, is NSNull), (is NSNull, nil), (is NSNull, is NSNull): return true
    case let (x?, y?): return NSArray(array: [x]).isEqual(to: [y])
    default: return false
    }
}

private func decode(_ part: Substring) -> Data {
    var s = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s)!
}

private final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
    let base: String
    let exchanges: [[String: Any]]
    let key: DeviceKey
    var next = 0
    var failures: [String] = []

    init(base: String, exchanges: [[String: Any]], key: DeviceKey) {
        self.base = base
        self.exchanges = exchanges
        self.key = key
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard next < exchanges.count else {
            failures.append("unexpected request \(request.method) \(request.url)")
            throw URLError(.badServerResponse)
        }
        let exchange = exchanges[next]
        next += 1
        let want = exchange["request"] as! [String: Any]
        if request.url.absoluteString != base + (want["path"] as! String) { failures.append("url \(request.url)") }
        if request.method != want["method"] as? String { failures.append("method \(request.method)") }
        for (name, value) in want["headers"] as? [String: String] ?? [:] where request.headers[name] != value {
            failures.append("header \(name): \(request.headers[name] ?? "none")")
        }
        let body = request.body.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        for (name, value) in want["body"] as? [String: Any] ?? [:] where !same(body[name], value) {
            failures.append("body \(name)")
        }
        if want["deviceKey"] as? Bool == true, !same(body["devicePublicKey"], DPoP.jwk(key.publicKey)) {
            failures.append("devicePublicKey")
        }
        if let dpop = want["dpop"] as? [String: Any] {
            checkProof(request.headers["DPoP"], dpop)
        } else if request.headers["DPoP"] != nil {
            failures.append("an unexpected DPoP header")
        }
        let response = exchange["response"] as! [String: Any]
        if response["network"] as? Bool == true { throw URLError(.networkConnectionLost) }
        return HTTPResponse(status: response["status"] as! Int, headers: response["headers"] as? [String: String] ?? [:],
                            body: try JSONSerialization.data(withJSONObject: response["body"] ?? [:]))
    }

    private func checkProof(_ proof: String?, _ want: [String: Any]) {
        guard let parts = proof?.split(separator: "."), parts.count == 3 else { failures.append("no DPoP proof"); return }
        let claims = (try? JSONSerialization.jsonObject(with: decode(parts[1]))) as? [String: Any] ?? [:]
        for (name, value) in want where !same(claims[name], value) { failures.append("proof claim \(name)") }
        if claims["iat"] as? Int != now { failures.append("proof iat") }
        let signature = try? P256.Signing.ECDSASignature(rawRepresentation: decode(parts[2]))
        let input = Data("\(parts[0]).\(parts[1])".utf8)
        if signature.map({ key.publicKey.isValidSignature($0, for: input) }) != true { failures.append("proof signature") }
    }
}

/// The listener runs synchronously inside the client's actor: a lock, not an actor, so nothing is late.
private final class Events: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var reasons: [String] { lock.lock(); defer { lock.unlock() }; return list }
    func add(_ reason: String) { lock.lock(); list.append(reason); lock.unlock() }
}

private actor ScriptedAPI: SessionsAPI {
    var calls: [[String: Any]] = []
    func add(_ more: [[String: Any]]) { calls += more }
    private func next(_ op: String) throws -> [String: Any] {
        guard !calls.isEmpty else { throw MyDevicesError(status: 0, rawCode: "unexpected", message: op) }
        let call = calls.removeFirst()
        if let e = call["error"] as? [String: Any] {
            throw MyDevicesError(status: e["status"] as! Int, rawCode: e["code"] as! String, message: "",
                                 allowedAt: e["allowedAt"] as? String)
        }
        return call
    }
    func listSessions() async throws -> SessionList { SessionList(try next("listSessions")["result"] as! [String: Any]) }
    func closeSession(_ sessionId: String) async throws { _ = try next("closeSession") }
    func revokeOthers() async throws -> Int { (try next("revokeOthers")["result"] as! [String: Any])["revoked"] as! Int }
}

final class ContractTests: XCTestCase {
    func testAPIVectors() async throws {
        let api = try load("api.json")
        let base = api["baseUrl"] as! String
        for vector in api["vectors"] as! [[String: Any]] {
            if let requires = vector["requires"] as? [String], !Set(requires).isSubset(of: capabilities) { continue }
            let name = vector["name"] as! String
            let start = (api["states"] as! [String: Any])[vector["start"] as! String]!
            let key = SoftwareDeviceKey()
            let transport = ScriptedTransport(base: base, exchanges: vector["exchanges"] as! [[String: Any]], key: key)
            let client = MyDevicesClient(baseURL: base, store: MemoryTokenStore(try JSONSerialization.data(withJSONObject: start)),
                                         deviceKey: key, transport: transport, clock: { now })
            let events = Events()
            await client.onSignedOut { signedOut in events.add(signedOut.reason) }
            let call = vector["call"] as! [String: Any]
            var result: Any?
            var failure: MyDevicesError?
            do {
                switch call["op"] as! String {
                case "login":
                    let d = call["device"] as! [String: String]
                    let push = call["push"] as? [String: String]
                    let session = try await client.login(idToken: call["idToken"] as! String, device: DeviceInfo(
                        name: d["name"]!, platform: d["platform"]!, model: d["model"], osVersion: d["osVersion"],
                        appVersion: d["appVersion"]), pushToken: push?["token"])
                    result = ["sessionId": session.sessionId]
                case "listSessions":
                    let list = try await client.listSessions()
                    result = ["sessionIds": list.sessions.map(\.sessionId), "closeOthersAllowedAt": list.closeOthersAllowedAt as Any,
                              "autoCloseAfterDays": list.autoCloseAfterDays as Any]
                case "reauthenticate":
                    result = ["authTime": try await client.reauthenticate(idToken: call["idToken"] as! String) as Any]
                case "setAutoClose":
                    let days = (call["afterDays"] as? NSNumber)?.intValue
                    let r = try await client.setAutoClose(days.flatMap(AutoClose.init(rawValue:)))
                    result = ["autoCloseAfterDays": r.autoCloseAfterDays as Any, "closed": r.closed]
                case "current": result = ["sessionId": try await client.current().sessionId]
                case "closeSession": try await client.closeSession(call["sessionId"] as! String)
                case "revokeOthers": result = ["revoked": try await client.revokeOthers()]
                case "updatePushToken": try await client.updatePushToken(call["token"] as! String)
                case "logout": try await client.logout()
                case "exportAccount":
                    let r = try await client.exportAccount()
                    result = ["uid": r.uid, "documentPaths": r.documents.map(\.path)]
                case "respondToAlert":
                    let r = try await client.respond(toAlert: call["actionToken"] as! String,
                                                     answer: AlertAnswer(rawValue: call["answer"] as! String)!)
                    result = ["answer": r.answer, "status": r.status as Any, "closedSessionIds": r.closedSessionIds,
                              "advice": r.advice as Any]
                case "listActivity":
                    let page = try await client.listActivity(limit: (call["limit"] as? NSNumber)?.intValue ?? 20,
                                                             cursor: call["cursor"] as? String)
                    result = ["ids": page.activity.map(\.id), "texts": page.activity.map(\.text),
                              "closedByKinds": page.activity.map { $0.closedBy?.kind as Any },
                              "nextCursor": page.nextCursor as Any]
                default: XCTFail("\(name): unknown op")
                }
            } catch let error as MyDevicesError {
                failure = error
            }
            let expect = vector["expect"] as! [String: Any]
            if let want = expect["error"] as? [String: Any] {
                XCTAssertEqual(failure?.status, want["status"] as? Int, name)
                XCTAssertEqual(failure?.rawCode, want["code"] as? String, name)
                XCTAssertNotEqual(failure?.code, .other, name)
                XCTAssertEqual(failure?.retryAfter, want["retryAfter"] as? Int, name)
                XCTAssertEqual(failure?.allowedAt, want["allowedAt"] as? String, name)
                if want["reason"] != nil { XCTAssertEqual(failure?.reason, want["reason"] as? String, name) }
                if want["maxAge"] != nil { XCTAssertEqual(failure?.maxAge, want["maxAge"] as? Int, name) }
            } else {
                XCTAssertNil(failure, "\(name): \(failure?.rawCode ?? "")")
                if let want = expect["result"], !(want is NSNull) { XCTAssertTrue(same(result, want), name) }
            }
            let reasons = events.reasons
            XCTAssertEqual(reasons, (expect["signedOut"] as? String).map { [$0] } ?? [], name)
            let stored = await client.stored()
            let want = expect["stored"] as! [String: Any]
            XCTAssertEqual(stored.signedIn, want["signedIn"] as? Bool, name)
            XCTAssertEqual(stored.sessionId, want["sessionId"] as? String, name)
            XCTAssertEqual(stored.deviceId, want["deviceId"] as? String, name)
            XCTAssertEqual(transport.next, transport.exchanges.count, "\(name): requests made")
            XCTAssertEqual(transport.failures, [], name)
        }
    }

    func testPushVectors() async throws {
        for vector in try load("push.json")["vectors"] as! [[String: Any]] {
            let name = vector["name"] as! String
            let data = (vector["message"] as! [String: Any])["data"] as! [String: String]
            let expect = vector["expect"] as! [String: Any]
            let parsed = PushEvent.parse(data)
            switch parsed {
            case .forceLogout(let sid, let reason)?:
                XCTAssertTrue(same(["type": "forceLogout", "sessionId": sid, "reason": reason], expect["parsed"]), name)
            case .newLoginAlert(let a)?:
                let want = expect["parsed"] as! [String: Any]
                XCTAssertEqual(a.newSessionId, want["newSessionId"] as? String, name)
                XCTAssertEqual(a.actionToken, want["actionToken"] as? String, name)
                XCTAssertEqual(a.text, want["text"] as? String, name)
                XCTAssertEqual(a.locArgs, want["locArgs"] as? [String], name)
                XCTAssertEqual(a.expiresAt, want["expiresAt"] as? Int, name)
                let n = a.notification
                let wantN = expect["notification"] as! [String: Any]
                XCTAssertEqual(n.id, wantN["id"] as? Int, name)
                XCTAssertEqual(n.tag, wantN["tag"] as? String, name)
                XCTAssertEqual(n.bodyLocKey, wantN["bodyLocKey"] as? String, name)
                XCTAssertEqual(n.actions.map(\.uri), (wantN["actions"] as! [[String: Any]]).map { $0["uri"] as! String }, name)
            case nil:
                XCTAssertTrue(expect["parsed"] is NSNull, name)
            }
            let current = vector["currentSessionId"] as? String
            let state = StoredState(deviceId: "d", sessionId: current, accessToken: "a", refreshToken: "r")
            let client = MyDevicesClient(baseURL: "https://api.example.test", store: MemoryTokenStore(try JSONEncoder().encode(state)))
            let events = Events()
            await client.onSignedOut { signedOut in events.add(signedOut.reason) }
            let handled = await client.handlePush(data)
            let type: String? = switch handled {
            case .forceLogout?: "forceLogout"
            case .newLoginAlert?: "newLoginAlert"
            case nil: nil
            }
            let want = expect["handled"] as! [String: Any]
            XCTAssertEqual(type, want["event"] as? String, name)
            let reasons = events.reasons
            XCTAssertEqual(reasons.first, want["signedOut"] as? String, name)
        }
    }

    @MainActor
    func testSessionsScreenVectors() async throws {
        for vector in try load("sessions_screen.json")["vectors"] as! [[String: Any]] {
            let name = vector["name"] as! String
            let api = ScriptedAPI()
            let model = ActiveSessionsModel(api: api)
            for step in vector["steps"] as! [[String: Any]] {
                await api.add(step["calls"] as! [[String: Any]])
                switch step["do"] as! String {
                case "load": await model.load()
                case "requestClose": model.requestClose(step["sessionId"] as! String)
                case "requestCloseOthers": model.requestCloseOthers()
                case "confirm": await model.confirm()
                case "cancel": model.cancel()
                default: XCTFail(name)
                }
                let left = await api.calls.count
                XCTAssertEqual(left, 0, name)
                let s = model.state
                let want = step["expect"] as! [String: Any]
                let rows: [[String: Any]] = s.rows.map {
                    ["sessionId": $0.sessionId, "name": $0.name, "isCurrent": $0.isCurrent, "location": $0.location,
                     "deviceBound": $0.deviceBound, "close": $0.close.rawValue]
                }
                XCTAssertTrue(same(rows, want["rows"]), name)
                XCTAssertEqual(s.closeOthers ? "shown" : "hidden", want["closeOthers"] as? String, name)
                XCTAssertEqual(s.allowedAt, want["allowedAt"] as? String, name)
                XCTAssertEqual(s.onlyThisDevice, want["onlyThisDevice"] as? Bool, name)
                XCTAssertEqual(s.confirming?.question, (want["confirming"] as? [String: Any])?["question"] as? String, name)
                XCTAssertEqual(s.error?.code, (want["error"] as? [String: Any])?["code"] as? String, name)
                XCTAssertEqual(s.error?.allowedAt, (want["error"] as? [String: Any])?["allowedAt"] as? String, name)
            }
        }
    }

    func testEveryDocumentedCodeHasACase() throws {
        for vector in try load("api.json")["vectors"] as! [[String: Any]] {
            for exchange in vector["exchanges"] as! [[String: Any]] {
                let body = (exchange["response"] as! [String: Any])["body"] as? [String: Any]
                if let code = (body?["error"] as? [String: Any])?["code"] as? String {
                    XCTAssertNotNil(MyDevicesError.Code(rawValue: code), code)
                }
            }
        }
    }
}
