// OpenBLAS 0.3.21 (Debian 12's) can deadlock at process exit: its library destructor
// (gotoblas_quit → blas_thread_shutdown_) joins a worker thread that sleeps in
// pthread_cond_wait on a wake-up it missed, so a process that has finished its work never
// ends — seen here at the end of a test run, every test passed, the process idle for good
// (gdb: main thread in blas_thread_shutdown_ → pthread_join, the worker in
// pthread_cond_wait inside libopenblas). Once BLAS has been used, the process therefore ends
// itself after the exit handlers registered since (Foundation's, the studio's), flushing
// stdio, with the status `exit` was given — before the shared libraries' destructors run. The
// kernel reclaims the threads and memory those destructors would have released; nothing
// Troupe writes is buffered anywhere but stdio.

#if canImport(Glibc)
import Glibc
#endif

enum BLASProcessExit {
    /// Registered once, at the first GEMM.
    static let registered: Bool = {
        #if canImport(Glibc)
        return on_exit({ status, _ in
            fflush(nil)
            _exit(status)
        }, nil) == 0
        #else
        return false
        #endif
    }()
}
