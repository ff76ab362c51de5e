// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
import CryptoKit
import Foundation

/// The key a device-bound session belongs to: EC P-256. CryptoKit's signatures are raw r||s already.
public protocol DeviceKey: Sendable {
    var publicKey: P256.Signing.PublicKey { get }
    func sign(_ data: Data) throws -> Data
}

/// A Secure Enclave key (it never leaves the device); its opaque handle is kept in the Keychain.
public struct SecureEnclaveDeviceKey: DeviceKey {
    private let key: SecureEnclave.P256.Signing.PrivateKey
    public var publicKey: P256.Signing.PublicKey { key.publicKey }

    public init(handle store: TokenStore = KeychainTokenStore(service: "dev.mydevices.device-key")) throws {
        if let data = store.load(), let key = try? SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: data) {
            self.key = key
        } else {
            key = try SecureEnclave.P256.Signing.PrivateKey()
            store.save(key.dataRepresentation)
        }
    }

    public func sign(_ data: Data) throws -> Data { try key.signature(for: data).rawRepresentation }
}

/// A software key (tests, the simulator without a Secure Enclave).
public struct SoftwareDeviceKey: DeviceKey {
    private let key = P256.Signing.PrivateKey()
    public init() {}
    public var publicKey: P256.Signing.PublicKey { key.publicKey }
    public func sign(_ data: Data) throws -> Data { try key.signature(for: data).rawRepresentation }
}

enum DPoP {
    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The public key as an EC P-256 JWK (x963: 0x04 || X || Y).
    static func jwk(_ key: P256.Signing.PublicKey) -> [String: String] {
        let point = key.x963Representation
        return ["kty": "EC", "crv": "P-256", "x": base64URL(point.subdata(in: 1..<33)), "y": base64URL(point.subdata(in: 33..<65))]
    }

    static func proof(key: DeviceKey, htm: String, htu: String, iat: Int, nonce: String?) throws -> String {
        let header: [String: Any] = ["typ": "dpop+jwt", "alg": "ES256", "jwk": jwk(key.publicKey)]
        var claims: [String: Any] = ["jti": UUID().uuidString, "htm": htm, "htu": htu, "iat": iat]
        if let nonce { claims["nonce"] = nonce }
        let input = base64URL(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) + "."
            + base64URL(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        return input + "." + base64URL(try key.sign(Data(input.utf8)))
    }
}
