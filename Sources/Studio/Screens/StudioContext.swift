// What the studio's screens share: the store, the selected character, the preview renderer,
// how images reach this terminal (sixel after the refresh, or half blocks in the cells), the
// status-bar message, the modal dialog, and the inbox where background threads leave events
// for the event loop (screens are only touched on the main thread).

import Foundation
import Preview
import TUI

enum ScreenID: Int, CaseIterable { case characters, character, generate, tune, compare
    var title: String { ["Characters", "Character", "Generate", "Tune", "Compare"][rawValue] }
}

/// An image with a stable id (a file's path and stamp, or a render's id), so the sixel of an
/// unchanged image is encoded once and written again only when its place changes.
struct ShownImage {
    let id: String
    let image: RGBImage
}

final class StudioContext {
    let store: CharacterStore
    let environment: [String: String]
    let useSixel: Bool
    let cellSize: (width: Int, height: Int)
    var selectedCharacter: String?
    private(set) var message: (text: String, role: Role, until: Date)?
    var dialog: (Dialog, (Dialog.Outcome, inout Dialog) -> Bool)?
    var requestedScreen: ScreenID?
    var quitRequested = false
    lazy var renderer = PreviewRenderer(store: store) { [weak self] e in self?.post { $0.previewEvents.append(e) } }

    // The inbox: background threads append, the event loop drains.
    private let inboxLock = NSLock()
    private var inbox = Inbox()
    struct Inbox { var previewEvents: [PreviewRenderer.Event] = [] }

    /// Images the current frame placed, for sixel output after the refresh.
    var sixelPlacements: [(ShownImage, Rect)] = []

    private var imageCache: [String: (stamp: String, image: ShownImage?)] = [:]

    init(store: CharacterStore, environment: [String: String], useSixel: Bool, cellSize: (width: Int, height: Int)) {
        self.store = store; self.environment = environment; self.useSixel = useSixel; self.cellSize = cellSize
    }

    func post(_ change: (inout Inbox) -> Void) { inboxLock.lock(); change(&inbox); inboxLock.unlock() }

    func drain() -> Inbox { inboxLock.lock(); defer { inbox = Inbox(); inboxLock.unlock() }; return inbox }

    func say(_ text: String, role: Role = .status, seconds: Double = 6) { message = (text, role, Date().addingTimeInterval(seconds)) }
    func fail(_ text: String) { say(text, role: .error, seconds: 12) }

    /// Drops a message whose time is up; returns whether one was dropped.
    func expireMessage() -> Bool {
        guard let m = message, m.until <= Date() else { return false }
        message = nil; return true
    }

    var currentMessage: (String, Role)? {
        guard let m = message, m.until > Date() else { return nil }
        return (m.text, m.role)
    }

    /// Asks a question in a modal dialog; `handler` returns true to close it.
    func ask(_ d: Dialog, _ handler: @escaping (Dialog.Outcome, inout Dialog) -> Bool) { dialog = (d, handler) }

    /// Shows `img` in `rect`: half blocks now, or a sixel after the refresh.
    func draw(_ img: ShownImage, _ canvas: Canvas, in rect: Rect) {
        guard !rect.isEmpty else { return }
        if useSixel && canvas is TerminalSession { sixelPlacements.append((img, rect)); return }
        let rgb = img.image.channels == 3 ? img.image : Sixel.rgb(img.image)
        ImagePane.drawBlocks(ImageBitmap(width: rgb.width, height: rgb.height, pixels: rgb.pixels), canvas, in: rect)
    }

    /// A PNG from disk, cached until the file changes; nil (and a message) when unreadable.
    func image(at path: String) -> ShownImage? {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp = "\(attrs?[.size] ?? -1)|\((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        if let c = imageCache[path], c.stamp == stamp { return c.image }
        var shown: ShownImage?
        do {
            let img = try PNGCodec.read(path: path)
            shown = ShownImage(id: path + "|" + stamp, image: img.channels == 3 ? img : Sixel.rgb(img))
        } catch { say("\((path as NSString).lastPathComponent): \(error)", role: .warning) }
        if imageCache.count > 64 { imageCache.removeAll() }
        imageCache[path] = (stamp, shown)
        return shown
    }

    /// What a character screen shows with no character selected.
    func drawNoCharacter(_ canvas: Canvas, in rect: Rect, title: String) {
        canvas.box(rect, title: title)
        canvas.text("Select a character on screen 1 (Characters) first.", x: rect.x + 2, y: rect.y + 2, role: .dim)
    }

    /// A file-name timestamp ("20261130-214501"), for generations and grids.
    static func fileStamp(_ date: Date = Date()) -> String {
        let f = DateFormatter(); f.dateFormat = "yyyyMMdd-HHmmss"; f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: date)
    }

    /// The environment a job child gets (the studio's, so TROUPE_HOME and the model roots match).
    var jobEnvironment: [String: String] { environment }
}
