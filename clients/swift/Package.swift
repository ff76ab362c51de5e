// swift-tools-version:5.9
// NOT COMPILED HERE: these machines have no Swift compiler (see README.md); syntax checked with tree-sitter-swift.
import PackageDescription

let package = Package(
    name: "MyDevicesKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [.library(name: "MyDevicesKit", targets: ["MyDevicesKit"])],
    targets: [
        .target(name: "MyDevicesKit"),
        // The tests read the shared vectors from ../contract through #filePath.
        .testTarget(name: "MyDevicesKitTests", dependencies: ["MyDevicesKit"]),
    ]
)
