import Foundation

/// Catches Ctrl-C (SIGINT) so a training loop can save a checkpoint and exit cleanly: the first
/// Ctrl-C sets `requested`; a second one ends the process at once.
public enum Interrupt {
    nonisolated(unsafe) private static var count: Int32 = 0

    /// Whether Ctrl-C has been pressed since `install()`.
    public static var requested: Bool { count > 0 }

    /// Installs the handler (idempotent).
    public static func install() {
        count = 0
        signal(SIGINT) { _ in
            Interrupt.count += 1
            if Interrupt.count > 1 { _exit(130) }
        }
    }

    /// Restores the default Ctrl-C behaviour.
    public static func uninstall() { signal(SIGINT, SIG_DFL) }
}
