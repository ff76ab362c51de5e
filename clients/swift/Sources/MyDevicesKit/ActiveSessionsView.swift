// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
#if canImport(SwiftUI)
import SwiftUI

/// Renders ActiveSessionsModel's state as it is; the rules are in the model.
public struct ActiveSessionsView: View {
    @StateObject private var model: ActiveSessionsModel

    public init(api: SessionsAPI) { _model = StateObject(wrappedValue: ActiveSessionsModel(api: api)) }

    public var body: some View {
        List {
            if let allowedAt = model.state.allowedAt {
                Text("You can close other sessions from \(allowedAt).").font(.footnote)
            }
            if let error = model.state.error {
                Text(error.code == "session_too_new" ? "This session is too new to close others. You can from \(error.allowedAt ?? "later")."
                     : "That did not work (\(error.code)). Try again.").foregroundColor(.red)
            }
            ForEach(model.state.rows) { row in
                HStack {
                    VStack(alignment: .leading) {
                        Text(row.name).font(.headline)
                        Text(row.location).font(.subheadline)
                        if row.isCurrent { Text("This device").font(.caption) }
                        if row.deviceBound { Text("Device bound").font(.caption) }
                    }
                    Spacer()
                    if row.close == .enabled {
                        Button("Close") { model.requestClose(row.sessionId) }
                    }
                }
            }
            if model.state.closeOthers {
                Button(model.state.closeOthersLabel, role: .destructive) { model.requestCloseOthers() }
            }
        }
        .navigationTitle(model.state.title)
        .task { await model.load() }
        .confirmationDialog(model.state.confirming?.question ?? "", isPresented: Binding(
            get: { model.state.confirming != nil }, set: { shown in if !shown { model.cancel() } }
        ), titleVisibility: .visible) {
            if let asked = model.state.confirming {
                Button(asked.confirm, role: .destructive) { Task { await model.confirm() } }
                Button(asked.cancel, role: .cancel) { model.cancel() }
            }
        }
    }
}
#endif
