// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import CryptoKit
import Foundation

/// What a push's data means (the userInfo keys beside `aps`; docs/push-messages.md).
public enum PushEvent: Equatable, Sendable {
    case forceLogout(sessionId: String, reason: String)
    case newLoginAlert(NewLoginAlert)

    /// The typed event, or nil when it is not ours or cannot be acted on.
    public static func parse(_ userInfo: [AnyHashable: Any]) -> PushEvent? {
        func string(_ key: String) -> String? { userInfo[key] as? String }
        func nonEmpty(_ key: String) -> String? { string(key).flatMap { $0.isEmpty ? nil : $0 } }
        switch string("action") {
        case "force_logout":
            guard let sid = nonEmpty("sessionId") else { return nil }
            return .forceLogout(sessionId: sid, reason: string("reason") ?? "unknown")
        case "new_login_alert":
            guard let token = nonEmpty("actionToken"), let newSid = nonEmpty("newSessionId") else { return nil }
            var args: [String] = []
            if let raw = string("body_loc_args")?.data(using: .utf8),
               let parsed = try? JSONSerialization.jsonObject(with: raw, options: [.fragmentsAllowed]) as? [Any],
               parsed.allSatisfy({ $0 is String }) {
                args = parsed.compactMap { $0 as? String }
            }
            let expires = nonEmpty("expiresAt").flatMap { $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) ? Int($0) : nil }
            return .newLoginAlert(NewLoginAlert(
                sessionId: nonEmpty("sessionId"), newSessionId: newSid, actionToken: token,
                title: string("title") ?? "New sign-in", text: string("body") ?? "", locKey: string("body_loc_key"),
                locArgs: args, deviceName: nonEmpty("deviceName"), location: nonEmpty("location"),
                expiresAt: expires.flatMap { $0 > 0 ? $0 : nil }))
        default:
            return nil
        }
    }
}

public struct NewLoginAlert: Equatable, Sendable {
    public let sessionId: String?
    public let newSessionId: String
    public let actionToken: String
    public let title: String
    public let text: String
    public let locKey: String?
    public let locArgs: [String]
    public let deviceName: String?
    public let location: String?
    /// Unix seconds: when the action token expires.
    public let expiresAt: Int?

    public var notification: AlertNotification { AlertNotification(self) }
}

public enum AlertAnswer: String, Sendable { case yes, no }

public struct AlertAction: Equatable, Sendable {
    public let answer: AlertAnswer
    public let identifier: String
    public let titleKey: String
    public let title: String
    public let destructive: Bool
    public let authenticationRequired: Bool
    public let uri: String
}

/// What the alert shows, decided here: iOS draws the APNs alert itself with the MYDEVICES_NEW_LOGIN
/// category (Notifications.swift registers its actions); the fields match the Kotlin SDK's.
public struct AlertNotification: Equatable, Sendable {
    public static let channelId = "mydevices_security"
    public static let category = "MYDEVICES_NEW_LOGIN"
    public let tag: String
    public let id: Int
    public let title: String
    public let titleLocKey: String
    public let body: String
    public let bodyLocKey: String?
    public let bodyLocArgs: [String]
    public let expiresAt: Int?
    public let actions: [AlertAction]

    init(_ alert: NewLoginAlert) {
        let sid = alert.newSessionId
        tag = "new-login-\(sid)"
        id = AlertNotification.id(for: sid)
        title = alert.title
        titleLocKey = "mydevices_new_login_title"
        body = alert.text
        bodyLocKey = alert.locKey
        bodyLocArgs = alert.locArgs
        expiresAt = alert.expiresAt
        actions = [
            AlertAction(answer: .no, identifier: "MYDEVICES_NO", titleKey: "mydevices_no", title: "No, close this session",
                        destructive: true, authenticationRequired: false, uri: "mydevices://alert/\(sid)/no"),
            AlertAction(answer: .yes, identifier: "MYDEVICES_YES", titleKey: "mydevices_yes", title: "Yes, it was me",
                        destructive: false, authenticationRequired: true, uri: "mydevices://alert/\(sid)/yes"),
        ]
    }

    /// The first four bytes of SHA-256(newSessionId), big-endian, as a non-negative 31-bit number.
    static func id(for newSessionId: String) -> Int {
        let digest = Array(SHA256.hash(data: Data(newSessionId.utf8)))
        let n = (Int(digest[0]) << 24) | (Int(digest[1]) << 16) | (Int(digest[2]) << 8) | Int(digest[3])
        return n & 0x7fff_ffff
    }
}
