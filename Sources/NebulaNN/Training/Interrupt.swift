import Foundation

/// Catches Ctrl-C (SIGINT) and `kill` (SIGTERM, which is also what `mpirun` sends every rank when it gets Ctrl-C)
/// so a training loop can save a checkpoint and exit cleanly: the first signal sets `requested`; a second one
/// ends the process at once.
public enum Interrupt {
    nonisolated(unsafe) private static var count: Int32 = 0

    /// Whether Ctrl-C (or SIGTERM) has arrived since `install()`.
    public static var requested: Bool { count > 0 }

    /// Installs the handler (idempotent).
    public static func install() {
        count = 0
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                Interrupt.count += 1
                if Interrupt.count > 1 { _exit(128 + received) }
            }
        }
    }

    /// Restores the default behaviour of both signals.
    public static func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
