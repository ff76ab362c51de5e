// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import Foundation
import Security

/// The client's state as one JSON blob (tokens, device id, session id, last DPoP nonce).
public protocol TokenStore: Sendable {
    func load() -> Data?
    func save(_ data: Data)
}

public final class MemoryTokenStore: TokenStore, @unchecked Sendable {
    private var data: Data?
    private let lock = NSLock()
    public init(_ data: Data? = nil) { self.data = data }
    public func load() -> Data? { lock.lock(); defer { lock.unlock() }; return data }
    public func save(_ data: Data) { lock.lock(); self.data = data; lock.unlock() }
}

/// The Keychain, this device only, readable after the first unlock (background pushes and refreshes).
public struct KeychainTokenStore: TokenStore {
    let service: String
    public init(service: String = "dev.mydevices.state") { self.service = service }

    private var query: [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service,
         kSecAttrAccount as String: "state"]
    }

    public func load() -> Data? {
        var item: CFTypeRef?
        var ask = query
        ask[kSecReturnData as String] = true
        return SecItemCopyMatching(ask as CFDictionary, &item) == errSecSuccess ? item as? Data : nil
    }

    public func save(_ data: Data) {
        let attributes: [String: Any] = [kSecValueData as String: data,
                                         kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly]
        if SecItemUpdate(query as CFDictionary, attributes as CFDictionary) == errSecItemNotFound {
            SecItemAdd(query.merging(attributes) { $1 } as CFDictionary, nil)
        }
    }
}

/// What is stored. Signed out = no session id; the device id stays.
public struct StoredState: Codable, Equatable, Sendable {
    public var deviceId: String?
    public var sessionId: String?
    public var accessToken: String?
    public var refreshToken: String?
    public var accessTokenExpiresAt: Int?
    public var deviceBound: Bool?
    public var dpopNonce: String?
    public var signedIn: Bool { sessionId != nil }

    public init(deviceId: String? = nil, sessionId: String? = nil, accessToken: String? = nil, refreshToken: String? = nil,
                accessTokenExpiresAt: Int? = nil, deviceBound: Bool? = nil, dpopNonce: String? = nil) {
        self.deviceId = deviceId
        self.sessionId = sessionId
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.deviceBound = deviceBound
        self.dpopNonce = dpopNonce
    }
}
