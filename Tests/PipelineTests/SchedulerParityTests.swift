// Every scheduler step by step against diffusers (tools/fixtures/sd.py "sched.*"): the same
// timesteps, initial noise scale, scaled model inputs and step outputs for fixed ε inputs,
// with the torch generator seeded 7 for the stochastic ones. Both an ε and a v-prediction
// config. Tolerance 1e-5 × max(1, |reference|).

import XCTest
@testable import Pipeline

final class SchedulerParityTests: XCTestCase {
    /// fixture name → how Troupe builds the same scheduler from the pipeline's config
    let cases: [(String, (SchedulerConfig, Int) throws -> Scheduler)] = [
        ("ddim", { try DDIMScheduler($0, steps: $1) }),
        ("ddim_trailing", { var c = $0; c.timestepSpacing = "trailing"; return try DDIMScheduler(c, steps: $1) }),
        ("pndm", { try PNDMScheduler($0, steps: $1) }),
        ("ddpm", { try DDPMScheduler($0, steps: $1) }),
        ("euler", { try EulerDiscreteScheduler($0, steps: $1, ancestral: false) }),
        ("euler_linspace", { var c = $0; c.timestepSpacing = "linspace"; return try EulerDiscreteScheduler(c, steps: $1, ancestral: false) }),
        ("euler_a", { try EulerDiscreteScheduler($0, steps: $1, ancestral: true) }),
        ("dpmpp_2m", { try DPMSolverMultistepScheduler($0, steps: $1, karras: false) }),
        ("dpmpp_2m_karras", { try DPMSolverMultistepScheduler($0, steps: $1, karras: true) }),
    ]

    func testAllSchedulersMatchDiffusers() throws {
        for config in ["a", "b"] {
            let folder = try DiffusersFolder(path: Fixtures.url("sd/\(config)").path)
            let sc = try folder.config(SchedulerConfig.self, "scheduler", file: "scheduler_config.json")
            let r = try Fixtures.file("sd/\(config).safetensors")
            let x0 = try r.tensor("sched.x0"), eps = try r.tensor("sched.eps")
            for (name, make) in cases {
                let what = "\(config)/\(name)"
                let s = try make(sc, 6)
                XCTAssertEqual(s.timesteps.map(Double.init), try r.tensor("sched.\(name).timesteps").toArray().map(Double.init), what)
                XCTAssertEqual(s.initNoiseSigma, try r.tensor("sched.\(name).init_sigma").item(), accuracy: 1e-4 * max(1, s.initNoiseSigma), what)
                let inputs = try r.tensor("sched.\(name).inputs"), outputs = try r.tensor("sched.\(name).outputs")
                var g = TorchGenerator(seed: 7)
                var x = x0 * s.initNoiseSigma
                for k in 0..<s.timesteps.count {
                    assertClose(s.scaleModelInput(x, index: k), inputs.sliced(0, k..<(k + 1)).squeezed(0), tol: 1e-5, "\(what) input \(k)")
                    x = s.step(output: eps.sliced(0, k..<(k + 1)).squeezed(0), index: k, sample: x, rng: &g)
                    assertClose(x, outputs.sliced(0, k..<(k + 1)).squeezed(0), tol: 1e-5, "\(what) step \(k)")
                }
            }
        }
    }
}
