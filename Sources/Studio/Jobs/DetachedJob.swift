// How the studio starts a tuning job: a `troupe tune …` child in its own session (setsid),
// stdin and stdout on /dev/null, stderr in a launch log. In its own session it hears neither
// the studio's Ctrl-C nor the SIGHUP of a dropped SSH connection, and no pipe ties it to the
// studio: the job survives the studio closing, writes its events to runs/<id>/metrics.jsonl,
// and a reopened studio reattaches by reading that file (RunMonitor). Cancel is SIGINT to the
// pid the run's lock file names, the same path as Ctrl-C on the command line.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum DetachedJob {
    /// glibc's POSIX_SPAWN_SETSID (spawn.h, 0x80): Swift's Glibc module hides it behind _GNU_SOURCE.
    static let spawnSetSID: Int32 = 0x80

    struct LaunchError: Error, CustomStringConvertible { let description: String }

    /// Starts `executable arguments…` detached; returns its pid. The caller reaps it with `reap`.
    static func launch(executable: String = JobRunner.selfExecutable, arguments: [String], environment: [String: String],
                       logPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (glibc ≥ 2.26): a new session, no controlling terminal. Signals
        // the studio ignores or handles must not be inherited as such: reset them to default.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setflags(&attr, Int16(DetachedJob.spawnSetSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw LaunchError(description: "cannot start \(executable): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Why a job that exited with `status` failed: the last "troupe:" line of its launch log
    /// (the error the command printed), else the log's last line, else the status.
    static func failure(log path: String, status: Int32) -> String {
        let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
        return String(lines.last(where: { $0.contains("troupe:") }) ?? lines.last ?? "exit status \(status)")
    }

    /// Collects `pid` if it has exited; returns its exit status (nil: still running).
    static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
        if r < 0 && errno == ECHILD { return -1 }   // not our child (a reattached run)
        return nil
    }
}
