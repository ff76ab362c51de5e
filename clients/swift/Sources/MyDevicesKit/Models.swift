// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import Foundation

public struct DeviceInfo: Sendable {
    public var name: String
    public var platform: String = "ios"
    public var model: String?
    public var osVersion: String?
    public var appVersion: String?

    public init(name: String, platform: String = "ios", model: String? = nil, osVersion: String? = nil,
                appVersion: String? = nil) {
        self.name = name
        self.platform = platform
        self.model = model
        self.osVersion = osVersion
        self.appVersion = appVersion
    }

    var json: [String: Any] {
        var out: [String: Any] = ["name": name, "platform": platform]
        if let model { out["model"] = model }
        if let osVersion { out["osVersion"] = osVersion }
        if let appVersion { out["appVersion"] = appVersion }
        return out
    }
}

public struct DeviceSession: Equatable, Sendable, Identifiable {
    public let sessionId: String
    public let deviceName: String?
    public let deviceType: String?
    public let location: String?
    public let lastActiveAt: String?
    public let createdAt: String?
    public let isCurrentDevice: Bool
    public let deviceBound: Bool
    public let canClose: Bool?
    public var id: String { sessionId }

    init(_ m: [String: Any]) {
        sessionId = m["sessionId"] as? String ?? ""
        deviceName = m["deviceName"] as? String
        deviceType = m["deviceType"] as? String
        location = m["location"] as? String
        lastActiveAt = m["lastActiveAt"] as? String
        createdAt = m["createdAt"] as? String
        isCurrentDevice = m["isCurrentDevice"] as? Bool ?? false
        deviceBound = m["deviceBound"] as? Bool ?? false
        canClose = m["canClose"] as? Bool
    }
}

public struct SessionList: Equatable, Sendable {
    public let sessions: [DeviceSession]
    public let closeOthersAllowedAt: String?
    /// The user's auto-close choice (days without activity: 7, 30, 90 or 180); nil: off.
    public let autoCloseAfterDays: Int?

    init(_ m: [String: Any]) {
        sessions = (m["sessions"] as? [[String: Any]] ?? []).map(DeviceSession.init)
        closeOthersAllowedAt = m["closeOthersAllowedAt"] as? String
        autoCloseAfterDays = (m["autoCloseAfterDays"] as? NSNumber)?.intValue
    }
}

/// Who closed a session, in the security activity: `kind` user, alert_answer, support, account, copied_token,
/// expiry, same_device or logout (docs/activity.md); `text` is the server's words ("Closed by support: <note>").
public struct ClosedBy: Equatable, Sendable {
    public let kind: String?
    public let sessionId: String?
    public let deviceName: String?
    public let note: String?
    public let text: String

    init(_ m: [String: Any]) {
        kind = m["kind"] as? String
        sessionId = m["sessionId"] as? String
        deviceName = m["deviceName"] as? String
        note = m["note"] as? String
        text = m["text"] as? String ?? "Closed"
    }
}

/// One entry of the user's security activity (GET /v1/activity). `kind`: signed_in, closed, copied_token or
/// alert_answered. Show `text` with `Text(verbatim:)`: the device names and notes in it are other people's words.
public struct ActivityEntry: Equatable, Sendable, Identifiable {
    public let id: String
    public let kind: String
    public let at: String?
    public let sessionId: String?
    public let deviceName: String?
    public let platform: String?
    public let isCurrentDevice: Bool
    public let text: String
    public let location: String?
    public let alerted: Bool?
    public let reason: String?
    public let closedBy: ClosedBy?
    public let liveSessionId: String?
    public let answer: String?

    init(_ m: [String: Any]) {
        id = m["id"] as? String ?? ""
        kind = m["kind"] as? String ?? ""
        at = m["at"] as? String
        sessionId = m["sessionId"] as? String
        deviceName = m["deviceName"] as? String
        platform = m["platform"] as? String
        isCurrentDevice = m["isCurrentDevice"] as? Bool ?? false
        text = m["text"] as? String ?? ""
        location = m["location"] as? String
        alerted = m["alerted"] as? Bool
        reason = m["reason"] as? String
        closedBy = (m["closedBy"] as? [String: Any]).map(ClosedBy.init)
        liveSessionId = m["liveSessionId"] as? String
        answer = m["answer"] as? String
    }
}

/// A page of the security activity, newest first; pass `nextCursor` back for the next (nil: the last page).
public struct ActivityPage: Equatable, Sendable {
    public let activity: [ActivityEntry]
    public let nextCursor: String?

    init(_ m: [String: Any]) {
        activity = (m["activity"] as? [[String: Any]] ?? []).map(ActivityEntry.init)
        nextCursor = m["nextCursor"] as? String
    }
}

/// "Close my sessions after 1 week / 1 month / 3 months / 6 months without activity".
public enum AutoClose: Int, CaseIterable, Sendable {
    case week = 7, month = 30, threeMonths = 90, sixMonths = 180
}

/// PUT /v1/sessions/auto-close: the choice now in force, and how many idle sessions it closed at once.
public struct AutoCloseResult: Equatable, Sendable {
    public let autoCloseAfterDays: Int?
    public let closed: Int
}

/// GET /v1/account/export: everything My Devices keeps about the user, secret fields left out
/// (`removedFields` names them). Each document is its Firestore path and its fields as JSON values.
public struct AccountExport: @unchecked Sendable {
    public let uid: String
    public let exportedAt: String?
    public let documents: [ExportedDocument]
    public let removedFields: [String]
}

public struct ExportedDocument: @unchecked Sendable {
    public let path: String
    public let data: [String: Any]
}

public struct AlertResponse: Equatable, Sendable {
    public let answer: String
    public let status: String?
    public let closedSessionIds: [String]
    /// "change_password" after a "No": offer it.
    public let advice: String?
}

public struct SignedOut: Sendable {
    public let reason: String
    public let error: MyDevicesError?
}

/// What the sessions screen needs (the client, or a fake in tests).
public protocol SessionsAPI: Sendable {
    func listSessions() async throws -> SessionList
    func closeSession(_ sessionId: String) async throws
    func revokeOthers() async throws -> Int
}
