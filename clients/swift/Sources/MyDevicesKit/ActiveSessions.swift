// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import Foundation

public enum CloseButton: String, Sendable { case none, enabled, hidden }

public struct SessionRow: Equatable, Identifiable, Sendable {
    public let sessionId: String
    public let name: String
    public let isCurrent: Bool
    public let location: String
    public let deviceBound: Bool
    public let close: CloseButton
    public var id: String { sessionId }
}

public struct Confirmation: Equatable, Sendable {
    public enum Kind: String, Sendable { case one, others }
    public let kind: Kind
    public let sessionId: String?
    public let question: String
    public let confirm: String
    public let cancel: String
}

public struct ScreenError: Equatable, Sendable {
    public let code: String
    public let allowedAt: String?
}

public struct ActiveSessionsState: Equatable, Sendable {
    public var title = "Active sessions"
    public var rows: [SessionRow] = []
    public var closeOthers = false
    public var closeOthersLabel = "Sign out from all other sessions"
    public var allowedAt: String?
    public var onlyThisDevice = false
    public var confirming: Confirmation?
    public var error: ScreenError?
    public var busy = false
}

/// The sessions screen's rules as a state holder (the same as the Kotlin core's ActiveSessionsModel).
@MainActor
public final class ActiveSessionsModel: ObservableObject {
    @Published public private(set) var state = ActiveSessionsState()
    private let api: SessionsAPI

    public init(api: SessionsAPI) { self.api = api }

    public func load() async {
        state.busy = true
        do {
            show(try await api.listSessions())
        } catch let error as MyDevicesError {
            state.busy = false
            state.error = ScreenError(code: error.rawCode, allowedAt: error.allowedAt)
        } catch {
            state.busy = false
        }
    }

    private func show(_ list: SessionList) {
        let others = list.sessions.filter { !$0.isCurrentDevice }.count
        var next = ActiveSessionsState()
        next.rows = list.sessions.map { s in
            SessionRow(
                sessionId: s.sessionId, name: (s.deviceName ?? "").isEmpty ? "Unnamed device" : s.deviceName!,
                isCurrent: s.isCurrentDevice, location: (s.location ?? "").isEmpty ? "Location unknown" : s.location!,
                deviceBound: s.deviceBound,
                close: s.isCurrentDevice ? .none : (s.canClose == false ? .hidden : .enabled))
        }
        next.closeOthers = others > 1 && list.closeOthersAllowedAt == nil
        next.allowedAt = list.closeOthersAllowedAt
        next.onlyThisDevice = others == 0
        state = next
    }

    public func requestClose(_ sessionId: String) {
        guard let row = state.rows.first(where: { $0.sessionId == sessionId }), row.close == .enabled else { return }
        state.error = nil
        state.confirming = Confirmation(kind: .one, sessionId: sessionId, question: "Close the session on \u{201C}\(row.name)\u{201D}?",
                                        confirm: "Close", cancel: "Cancel")
    }

    public func requestCloseOthers() {
        guard state.closeOthers else { return }
        let others = state.rows.filter { !$0.isCurrent }.count
        state.error = nil
        state.confirming = Confirmation(kind: .others, sessionId: nil, question: "Close all \(others) other sessions?",
                                        confirm: "Close all", cancel: "Cancel")
    }

    public func cancel() { state.confirming = nil }

    public func confirm() async {
        guard let asked = state.confirming else { return }
        state.confirming = nil
        state.busy = true
        do {
            switch asked.kind {
            case .one: try await api.closeSession(asked.sessionId ?? "")
            case .others: _ = try await api.revokeOthers()
            }
        } catch let error as MyDevicesError where error.code == .notFound {
            // closed elsewhere meanwhile: the list read below shows it gone
        } catch let error as MyDevicesError {
            state.busy = false
            state.error = ScreenError(code: error.rawCode, allowedAt: error.allowedAt)
            return
        } catch {
            state.busy = false
            return
        }
        await load()
    }
}
