// Tune: the selected character's runs. Start OneActor or stage 1 as a background job (a
// detached `troupe tune` child: it outlives the studio and reattaches on reopen), watch each
// loss term's curve from the run's event stream, lr, it/s, ETA and the latest sample image;
// cancel (SIGINT: the job checkpoints and stops) and resume.

import Foundation
import Pipeline
import TUI

final class TuneScreen: StudioScreen {
    enum Action { case oneactor, stage1, stage2, stage3, stages, cancel, resume, logY }
    let id = ScreenID.tune
    var list = ListView()
    private(set) var character: String?
    private(set) var runs: [CharacterRecord.Run] = []
    private var watches: [String: RunWatch] = [:]
    var plot = BraillePlot()
    /// Jobs this studio started and has not reaped: pid → (kind, launch log).
    private var launched: [pid_t: (kind: String, log: String)] = [:]
    private var lastRecordRead = Date.distantPast
    /// A run this studio just started is selected when its record appears, so its plot is the
    /// one shown (not the run selected before the key).
    private var selectNextNewRun = false

    let keys = ScreenKeys<Action>([
        KeyBinding([.char("o")], "OneActor", help: "start OneActor tuning (projector, one shot from the target)", .oneactor),
        KeyBinding([.char("s")], "stage 1", help: "start the stage-1 appearance LoRA from the accepted references", .stage1),
        KeyBinding([.char("S")], "stage 2", help: "start stage 2 (detail/style: identity loss, prior preservation) from stage 1", .stage2),
        KeyBinding([.char("P")], "stage 3", help: "start stage 3 (pose/expression: the training judge on x̂₀) from stage 2", .stage3),
        KeyBinding([.char("A")], "all stages", help: "start stages 1 → 2 → 3 as one job (a soup if the model recommends one)", .stages),
        KeyBinding([.char("c")], "cancel", help: "cancel the selected run (it checkpoints first)", .cancel),
        KeyBinding([.char("r")], "resume", help: "resume the selected run from its last checkpoint", .resume),
        KeyBinding([.char("L")], "log-y", help: "log scale for the loss plot", .logY),
        KeyBinding(help: [.up, .char("k"), .down, .char("j")], "select a run"),
    ])
    var keyHelp: [(key: String, hint: String, help: String)] { keys.help }

    func activate(_ ctx: StudioContext) {
        if character != ctx.selectedCharacter { character = ctx.selectedCharacter; watches = [:]; list = ListView(); runs = []; selectNextNewRun = false }
        reloadRuns(ctx)
    }

    private func reloadRuns(_ ctx: StudioContext) {
        lastRecordRead = Date()
        guard let name = character, let r = try? ctx.store.load(name) else { runs = []; list.items = []; return }
        let selectedID = list.selection.map { runs[$0].id }
        let known = Set(runs.map(\.id))
        runs = r.runs.reversed()   // newest first
        list.items = runs.map { describe($0, ctx) }
        if selectNextNewRun, let newest = runs.first, !known.contains(newest.id) {
            list.select(item: 0); selectNextNewRun = false
        } else if let sid = selectedID, let i = runs.firstIndex(where: { $0.id == sid }) { list.select(item: i) }
    }

    func watch(_ run: CharacterRecord.Run, _ ctx: StudioContext) -> RunWatch {
        if let w = watches[run.id] { return w }
        let w = RunWatch(id: run.id, directory: ctx.store.folder(character ?? "") + "/runs/" + run.id)
        w.poll(); watches[run.id] = w
        return w
    }

    /// "oneactor  running  120/200" — the record's status corrected by what is true now: a
    /// "running" run nobody drives died (kill -9, power loss) and can be resumed.
    func status(_ run: CharacterRecord.Run, _ ctx: StudioContext) -> (String, Role) {
        let w = watch(run, ctx)
        if w.livePID != nil { return ("running", .good) }
        switch run.status {
        case "running": return ("stopped — resume with r", .warning)
        case "finished": return ("finished", .text)
        case "failed": return ("failed", .error)
        case "cancelled": return ("cancelled — r resumes", .dim)
        default: return (run.status, .text)
        }
    }

    private func describe(_ run: CharacterRecord.Run, _ ctx: StudioContext) -> String {
        let w = watch(run, ctx)
        let progress = w.lastStep.map { " \($0.step)/\($0.total)" } ?? ""
        let member = run.member.map { " \($0 + 1)/\(run.soup ?? $0 + 1)" } ?? ""
        return "\((run.kind + member).padding(toLength: 12, withPad: " ", startingAt: 0)) \(status(run, ctx).0)\(progress)"
    }

    func tick(_ ctx: StudioContext) -> Bool {
        var changed = false
        for (pid, job) in launched {
            guard let code = DetachedJob.reap(pid) else { continue }
            launched[pid] = nil; changed = true
            if code != 0 && code != 130 { selectNextNewRun = false; ctx.fail("\(job.kind): " + DetachedJob.failure(log: job.log, status: code)) }
        }
        // The record re-read: a new run, or a run's new status (a job that finished or failed
        // says so there and nowhere else), is a change to draw.
        if character != nil, Date().timeIntervalSince(lastRecordRead) > 1 { let before = list.items; reloadRuns(ctx); changed = changed || before != list.items }
        for w in watches.values where w.poll() { changed = true }
        if changed { list.items = runs.map { describe($0, ctx) } }
        return changed
    }

    func start(_ kind: String, resume: Bool, _ ctx: StudioContext, extra: [String] = []) {
        guard let name = character else { ctx.fail("select a character first (screen 1)"); return }
        let folder = ctx.store.folder(name)
        try? FileManager.default.createDirectory(atPath: folder + "/runs", withIntermediateDirectories: true)
        let log = folder + "/runs/.launch-\(kind).log"
        var args = ["tune", kind, name, "--preview-every", "25"]
        if resume { args.append("--resume") }
        args += extra
        do {
            let pid = try DetachedJob.launch(arguments: args, environment: ctx.jobEnvironment, logPath: log)
            launched[pid] = (kind, log)
            selectNextNewRun = !resume
            ctx.say("\(resume ? "resuming" : "started") \(kind) for \(name) (pid \(pid)); it keeps running if the studio closes", role: .good)
        } catch { ctx.fail("\(error)") }
    }

    func handle(_ key: Key, _ ctx: StudioContext) -> Bool {
        if list.handle(key) { return true }
        guard let action = keys.action(key) else { return false }
        let selected = list.selection.map { runs[$0] }
        switch action {
        case .oneactor: start("oneactor", resume: false, ctx)
        case .stage1: start("stage1", resume: false, ctx)
        case .stage2: start("stage2", resume: false, ctx)
        case .stage3: start("stage3", resume: false, ctx)
        case .stages: start("stages", resume: false, ctx)
        case .logY: plot.logY.toggle()
        case .cancel:
            guard let run = selected, let pid = watch(run, ctx).livePID else { ctx.fail("the selected run is not running"); break }
            kill(pid, SIGINT)
            ctx.say("cancelling \(run.kind): it stops at the next step with a checkpoint")
        case .resume:
            guard let run = selected else { break }
            guard watch(run, ctx).livePID == nil else { ctx.fail("\(run.kind) is running already"); break }
            guard run.status != "finished" else { ctx.fail("that run finished; start a new one"); break }
            // A soup member's stage resumes the whole soup: its later stages, the other members, the soups.
            if let k = run.soup { start("stages", resume: true, ctx, extra: ["--soup", String(k)]) } else { start(run.kind, resume: true, ctx) }
        }
        return true
    }

    /// Each loss term twice: its raw per-step values, dim (one step's loss depends on the
    /// sampled timestep and is noisy), and an exponential moving average over ~20 steps in the
    /// term's colour, drawn on top — the trend a person reads.
    static func plotted(_ series: [(name: String, points: [(x: Double, y: Double)])]) -> [PlotSeries] {
        let raw = series.map { PlotSeries(name: $0.name, points: $0.points, role: .dim) }
        let smooth = series.enumerated().map { i, s -> PlotSeries in
            var ema: Double?, out: [(x: Double, y: Double)] = []
            for p in s.points where p.y.isFinite { ema = ema.map { 0.95 * $0 + 0.05 * p.y } ?? p.y; out.append((p.x, ema!)) }
            return PlotSeries(name: s.name + " ema", points: out, role: Role.plots[i % Role.plots.count])
        }
        return raw + smooth
    }

    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext) {
        guard let name = character else { ctx.drawNoCharacter(canvas, in: rect, title: "Tune"); return }
        let (left, right) = rect.splitColumns(min(40, max(30, rect.width / 3)))
        let (runsRect, sampleRect) = left.splitRows(max(6, left.height / 2))
        let inner = canvas.box(runsRect, title: "Runs · \(name)", focused: true)
        list.draw(canvas, in: inner, focused: true, empty: "no runs — o: OneActor, s: stage 1")
        let sampleInner = canvas.box(sampleRect, title: "Latest sample")
        let run = list.selection.map { runs[$0] }
        let w = run.map { watch($0, ctx) }
        if let path = w?.latestSample, let img = ctx.image(at: path) { ctx.draw(img, canvas, in: sampleInner) }
        else { canvas.text("samples appear while a run trains", x: sampleInner.x, y: sampleInner.y, role: .dim, maxWidth: sampleInner.width) }

        let plotInner = canvas.box(right, title: run.map { "\($0.kind) · \($0.id)" } ?? "Loss")
        let (plotRect, stats) = plotInner.splitBottom(3)
        plot.series = TuneScreen.plotted(w?.lossSeries ?? [])
        plot.draw(canvas, in: plotRect)
        if let run, let w {
            let (st, role) = status(run, ctx)
            if let last = w.lastStep {
                ProgressBar.draw(canvas, in: Rect(x: stats.x, y: stats.y, width: stats.width, height: 1), fraction: Double(last.step) / Double(max(1, last.total)),
                                 label: "step \(last.step)/\(last.total)")
                let eta = last.eta > 0 ? String(format: "%d:%02d", Int(last.eta) / 60, Int(last.eta) % 60) : "–"
                canvas.text(String(format: "lr %.2e · %.2f it/s · ETA %@", last.lr, last.rate, eta), x: stats.x, y: stats.y + 1, role: .text, maxWidth: stats.width)
            }
            var line = st
            if case .failed(let why)? = w.ending { line = "failed: \(why)" }
            if case .finished(_, let outs)? = w.ending { line = "finished → " + outs.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ") }
            canvas.text(line, x: stats.x, y: stats.y + 2, role: role, maxWidth: stats.width)
        }
    }
}
