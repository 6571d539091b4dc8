// The `troupe` command line: a thin layer over the library targets (design §7).

import ArgumentParser

@main
struct Troupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "troupe",
        abstract: "A terminal studio for consistent characters with diffusion models.",
        subcommands: [Bench.self]
    )
}
