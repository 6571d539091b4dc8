import Foundation
import XCTest
@testable import TUI

final class WidgetTests: XCTestCase {
    override func setUp() { setlocale(LC_CTYPE, "C.UTF-8") }

    func testRectSplitsTileTheArea() {
        let r = Rect(x: 2, y: 1, width: 80, height: 24)
        let (l, rr) = r.splitColumns(30)
        XCTAssertEqual(l, Rect(x: 2, y: 1, width: 30, height: 24))
        XCTAssertEqual(rr.x, 33); XCTAssertEqual(rr.width, 49)
        let (top, bottom) = r.splitRows(5)
        XCTAssertEqual(top.height + bottom.height, 24)
        XCTAssertEqual(r.splitBottom(3).bottom, Rect(x: 2, y: 22, width: 80, height: 3))
        XCTAssertEqual(r.splitColumns(500).0.width, 80)   // clamped, never negative
        XCTAssertEqual(r.splitColumns(500).1.width, 0)
    }

    func testTextWidthCountsWideCharactersAndClips() {
        XCTAssertEqual(TextWidth.of("abc"), 3)
        XCTAssertEqual(TextWidth.of("騎士"), 4)
        XCTAssertEqual(TextWidth.clip("騎士の絵", to: 5), "騎士")
        XCTAssertEqual(TextWidth.clip("a knight", to: 5, ellipsis: true), "a kn…")
        XCTAssertEqual(TextWidth.pad("ab", to: 4), "ab  ")
        let c = TextCanvas(width: 6, height: 1)
        c.text("騎士騎士", x: 0, y: 0)
        XCTAssertEqual(c.lines[0].trimmingCharacters(in: .whitespaces), "騎士騎")
    }

    func testShippedThemesParseAndBadThemesNameTheKey() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../themes").standardized.path
        for name in ["default", "light", "high-contrast", "mono"] {
            let t = try Theme.load(name, directories: [dir])
            XCTAssertEqual(t.name, name)
            XCTAssertEqual(Set(t.styles.keys), Set(Role.allCases), "\(name) sets every role")
        }
        XCTAssertThrowsError(try Theme.parse(Data(#"{"roles": {"texxt": {}}}"#.utf8), file: "t.json")) { XCTAssertTrue("\($0)".contains("roles.texxt")) }
        XCTAssertThrowsError(try Theme.parse(Data(##"{"roles": {"text": {"fg": "#12"}}}"##.utf8), file: "t.json")) { XCTAssertTrue("\($0)".contains("roles.text.fg")) }
        XCTAssertThrowsError(try Theme.parse(Data(#"{"roles": {"text": {"bold": "yes"}}}"#.utf8), file: "t.json")) { XCTAssertTrue("\($0)".contains("roles.text.bold")) }
        XCTAssertThrowsError(try Theme.parse(Data("not json".utf8), file: "t.json"))
        XCTAssertThrowsError(try Theme.load("nope", directories: [dir])) { XCTAssertTrue("\($0)".contains("no such theme")) }
    }

    func testColourDepthMapsToWhatTheTerminalHas() {
        XCTAssertEqual(ColorDepth(colors: 256, noColor: false), .indexed256)
        XCTAssertEqual(ColorDepth(colors: 256, noColor: true), ColorDepth.none)
        XCTAssertEqual(ColorDepth(colors: 1 << 24, noColor: false), .direct)
        XCTAssertEqual(ColorDepth(colors: 8, noColor: false), .ansi8)
        XCTAssertEqual(ColorDepth.indexed256.number(.rgb(255, 0, 0)), 196)
        XCTAssertEqual(ColorDepth.indexed256.number(.rgb(128, 128, 128)), 244)   // grey ramp beats the cube
        XCTAssertEqual(ColorDepth.direct.number(.rgb(1, 2, 3)), 0x010203)
        XCTAssertEqual(ColorDepth.ansi8.number(.rgb(250, 10, 10)), 1)
        XCTAssertEqual(ColorDepth.ansi8.number(.indexed(12)), 4)                  // bright blue → blue
        XCTAssertEqual(ColorDepth.indexed256.number(.terminalDefault), -1)
        XCTAssertEqual(ColorDepth.none.number(.rgb(1, 2, 3)), -1)
    }

    func testListFiltersNavigatesAndClicks() {
        var l = ListView(items: ["Ada", "Bram", "Cleo", "Ada the second"])
        let c = TextCanvas(width: 30, height: 6)
        l.draw(c, in: Rect(x: 0, y: 0, width: 30, height: 6), focused: true)
        XCTAssertEqual(l.selection, 0)
        XCTAssertTrue(c.lines[0].hasPrefix("▸ Ada"))
        XCTAssertEqual(c.role(at: 2, 0), .selection)
        _ = l.handle(.down); _ = l.handle(.char("j")); XCTAssertEqual(l.selection, 2)
        _ = l.handle(.end); XCTAssertEqual(l.selection, 3)
        _ = l.handle(.char("/")); XCTAssertTrue(l.isFiltering)
        for ch in "ada" { _ = l.handle(.char(ch)) }
        XCTAssertEqual(l.visible, [0, 3])
        _ = l.handle(.enter); XCTAssertFalse(l.isFiltering)
        _ = l.handle(.down); XCTAssertEqual(l.selection, 3)
        l.draw(c, in: Rect(x: 0, y: 0, width: 30, height: 6), focused: true)
        XCTAssertTrue(c.lines[0].hasPrefix("/ada"))
        _ = l.handle(.mouse(MouseEvent(x: 3, y: 1, kind: .click)))     // row 1 under the filter line
        XCTAssertEqual(l.selection, 0)
        _ = l.handle(.char("/")); _ = l.handle(.escape)
        XCTAssertEqual(l.visible.count, 4)
        var empty = ListView()
        XCTAssertNil(empty.selection)
        empty.draw(c, in: Rect(x: 0, y: 0, width: 30, height: 6), focused: true, empty: "nothing")
        XCTAssertTrue(c.lines[0].hasPrefix("nothing"))
    }

    func testSliderSnapsClampsAndFollowsClicks() {
        var s = Slider("CFG", value: 7.3, range: 0...20, step: 0.5, coarse: 2, decimals: 1)
        XCTAssertEqual(s.value, 7.5)
        XCTAssertTrue(s.handle(.right)); XCTAssertEqual(s.value, 8)
        XCTAssertTrue(s.handle(.char("H"))); XCTAssertEqual(s.value, 6)
        XCTAssertTrue(s.handle(.end)); XCTAssertEqual(s.value, 20)
        XCTAssertFalse(s.handle(.right))                      // at the end: no change, no re-render
        XCTAssertFalse(s.handle(.char("z")))
        let c = TextCanvas(width: 40, height: 1)
        s.draw(c, in: Rect(x: 0, y: 0, width: 40, height: 1), focused: true, labelWidth: 6)
        XCTAssertTrue(c.lines[0].hasPrefix("CFG   ")); XCTAssertTrue(c.lines[0].hasSuffix("20.0"))
        XCTAssertTrue(s.handle(.mouse(MouseEvent(x: 6, y: 0, kind: .click))))   // the track's left end
        XCTAssertEqual(s.value, 0)
        XCTAssertEqual(Slider("Steps", value: 25, range: 1...100, step: 1, decimals: 0).text, "25")
    }

    func testTextFieldEditsAndRemembersHistory() {
        var f = TextField("Prompt")
        for ch in "a red knight" { _ = f.handle(.char(ch)) }
        XCTAssertEqual(f.text, "a red knight")
        _ = f.handle(.ctrl("w")); XCTAssertEqual(f.text, "a red ")
        _ = f.handle(.home); _ = f.handle(.delete); XCTAssertEqual(f.text, " red ")
        _ = f.handle(.end); _ = f.handle(.backspace); XCTAssertEqual(f.text, " red")
        f.commit()
        _ = f.handle(.ctrl("u")); XCTAssertEqual(f.text, "")
        _ = f.handle(.up); XCTAssertEqual(f.text, " red")
        _ = f.handle(.down); XCTAssertEqual(f.text, "")
        let c = TextCanvas(width: 20, height: 1)
        f.set("a very long prompt that scrolls")
        f.draw(c, in: Rect(x: 0, y: 0, width: 20, height: 1), focused: true, editing: true, labelWidth: 4)
        XCTAssertTrue(c.lines[0].contains("scrolls"), "the cursor end stays in view: \(c.lines[0])")
        f.draw(c, in: Rect(x: 0, y: 0, width: 20, height: 1), focused: false, editing: false, labelWidth: 4)
        XCTAssertTrue(c.lines[0].contains("a very"), "at rest the start shows: \(c.lines[0])")
    }

    func testBraillePlotDrawsSeriesLegendAndLogScale() {
        var p = BraillePlot()
        p.series = [PlotSeries(name: "loss", points: (0..<100).map { (Double($0), exp(-Double($0) / 20)) }, role: .plot1),
                    PlotSeries(name: "probe", points: (0..<100).map { (Double($0), 0.5) }, role: .plot2)]
        let c = TextCanvas(width: 60, height: 12)
        p.draw(c, in: Rect(x: 0, y: 0, width: 60, height: 12))
        XCTAssertTrue(c.lines[0].contains("loss 7.1e-03"), c.lines[0])   // exp(-99/20)
        XCTAssertTrue(c.lines[0].contains("probe 0.500"))
        let braille = c.cells.flatMap { $0 }.filter { $0.unicodeScalars.first.map { (0x2801...0x28FF).contains($0.value) } ?? false }
        XCTAssertGreaterThan(braille.count, 40)
        XCTAssertTrue(c.roles.flatMap { $0 }.contains(.plot1)); XCTAssertTrue(c.roles.flatMap { $0 }.contains(.plot2))
        XCTAssertTrue(c.lines[1].hasPrefix("1.000"))
        p.logY = true
        let c2 = TextCanvas(width: 60, height: 12)
        p.draw(c2, in: Rect(x: 0, y: 0, width: 60, height: 12))
        XCTAssertTrue(c2.lines[0].hasSuffix("log"))
        XCTAssertTrue(c2.lines[10].hasPrefix("7.1e-03"), c2.lines[10])
        var empty = BraillePlot()
        empty.series = [PlotSeries(name: "loss", points: [(0, .nan)], role: .plot1)]
        let c3 = TextCanvas(width: 40, height: 8)
        empty.draw(c3, in: Rect(x: 0, y: 0, width: 40, height: 8))
        XCTAssertTrue(c3.string.contains("no data yet"))
    }

    func testDialogMovesFocusAndChooses() {
        var d = Dialog(title: "New", fields: [TextField("Name"), TextField("Seed")], buttons: ["Create", "Cancel"])
        for ch in "Ada" { XCTAssertEqual(d.handle(.char(ch)), .none) }
        XCTAssertEqual(d.handle(.tab), .none)
        _ = d.handle(.char("7"))
        XCTAssertEqual(d.value("Name"), "Ada"); XCTAssertEqual(d.value("Seed"), "7")
        XCTAssertEqual(d.handle(.enter), .none)          // past the last field to the first button
        XCTAssertEqual(d.handle(.enter), .chose("Create"))
        XCTAssertEqual(d.handle(.escape), .cancelled)
        let c = TextCanvas(width: 70, height: 16)
        d.error = "a character named 'Ada' already exists"
        d.draw(c)
        XCTAssertTrue(c.string.contains("[ Create ]")); XCTAssertTrue(c.string.contains("already exists"))
    }

    func testImagePaneFitsBlocksAndSixelPlacement() {
        let img = ImageBitmap(width: 4, height: 4, pixels: [UInt8](repeating: 200, count: 48))
        let c = TextCanvas(width: 20, height: 10)
        ImagePane.drawBlocks(img, c, in: Rect(x: 0, y: 0, width: 20, height: 10))
        XCTAssertEqual(c.imageCells, 16 * 8)             // ×4 at most: 16 columns, 8 rows of half blocks
        let place = ImagePane.sixelPlacement(imageWidth: 64, height: 64, in: Rect(x: 10, y: 2, width: 40, height: 20), cell: (10, 20))!
        XCTAssertEqual(place.width, 384); XCTAssertEqual(place.height, 384)   // whole-number enlargement (×6)
        XCTAssertEqual(place.x, 10 + (40 - 39) / 2); XCTAssertEqual(place.y, 2 + (20 - 20) / 2)
        XCTAssertNil(ImagePane.sixelPlacement(imageWidth: 64, height: 64, in: Rect(x: 0, y: 0, width: 0, height: 5), cell: (10, 20)))
    }

    func testStatusBarAndKeyMapAgree() {
        enum A { case new, delete }
        let map = KeyMap<A>([KeyBinding([.char("n")], "new", help: "new character", .new),
                             KeyBinding([.char("d"), .delete], "delete", .delete)])
        XCTAssertEqual(map.action(for: .delete), .delete)
        XCTAssertNil(map.action(for: .char("x")))
        XCTAssertEqual(map.helpLines.map(\.0), ["n", "d/Del"])
        let c = TextCanvas(width: 50, height: 1)
        StatusBar.draw(c, in: Rect(x: 0, y: 0, width: 50, height: 1), hints: map.hints, message: "saved")
        XCTAssertTrue(c.lines[0].contains("n new")); XCTAssertTrue(c.lines[0].contains("d delete")); XCTAssertTrue(c.lines[0].hasSuffix("saved "))
    }
}
