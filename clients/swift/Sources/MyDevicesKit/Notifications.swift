// NOT COMPILED HERE: these machines have no Swift compiler (see clients/swift/README.md).
#if canImport(UserNotifications)
import UIKit
import UserNotifications

public enum MyDevicesNotifications {
    /// Register at launch, before registering for remote notifications. "No" is destructive and needs no
    /// unlock (closing an intruder is always safe); "Yes" needs the device unlocked. Neither opens the app.
    public static func registerCategory(center: UNUserNotificationCenter = .current()) {
        let no = UNNotificationAction(identifier: "MYDEVICES_NO",
                                      title: NSLocalizedString("mydevices_no", value: "No, close this session", comment: ""),
                                      options: [.destructive])
        let yes = UNNotificationAction(identifier: "MYDEVICES_YES",
                                       title: NSLocalizedString("mydevices_yes", value: "Yes, it was me", comment: ""),
                                       options: [.authenticationRequired])
        center.setNotificationCategories([
            UNNotificationCategory(identifier: AlertNotification.category, actions: [no, yes], intentIdentifiers: [], options: []),
        ])
    }

    /// From userNotificationCenter(_:didReceive:withCompletionHandler:): answers the alert in a background
    /// task. Returns nil when the response is not one of ours.
    public static func handle(_ response: UNNotificationResponse, client: MyDevicesClient) async -> AlertResponse? {
        let answer: AlertAnswer
        switch response.actionIdentifier {
        case "MYDEVICES_NO": answer = .no
        case "MYDEVICES_YES": answer = .yes
        default: return nil
        }
        guard case .newLoginAlert(let alert)? = PushEvent.parse(response.notification.request.content.userInfo) else {
            return nil
        }
        let task = await UIApplication.shared.beginBackgroundTask(withName: "mydevices.answer")
        defer { Task { @MainActor in UIApplication.shared.endBackgroundTask(task) } }
        return try? await client.respond(toAlert: alert.actionToken, answer: answer)
    }

    /// From application(_:didReceiveRemoteNotification:fetchCompletionHandler:): a force_logout for this
    /// session signs out (the client's onSignedOut listener shows sign-in).
    public static func handleBackgroundPush(_ userInfo: [AnyHashable: Any], client: MyDevicesClient) async -> UIBackgroundFetchResult {
        if case .forceLogout? = await client.handlePush(userInfo) { return .newData }
        return .noData
    }
}
#endif
