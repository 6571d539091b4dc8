// LoRA files in the kohya and PEFT layouts (tools/fixtures/sd.py writes both from the same
// random pairs, including a 1×1-conv proj_in and a 3×3 LoCon conv) equal diffusers run with
// the pairs merged into the weights (multiplier · alpha/rank · B·A).

import XCTest
@testable import Pipeline

final class LoRATests: XCTestCase {
    func testKohyaAndPEFTFilesEqualMergedWeights() throws {
        let merged = try Fixtures.file("sd/lora-merged.safetensors")
        let ref = try Fixtures.file("sd/a.safetensors")
        let multiplier = try merged.tensor("multiplier").item()
        for file in ["lora-kohya", "lora-peft"] {
            let folder = try DiffusersFolder(path: Fixtures.url("sd/a").path)
            let unet = try folder.unet(), te = try folder.textEncoder()
            let lora = try LoRAFile(path: Fixtures.url("sd/\(file).safetensors").path)
            XCTAssertEqual(try lora.apply(multiplier: multiplier, unet: unet, textEncoder: te), 6, file)
            let ids = try ref.integers("tok.ids")
            assertClose(te([Array(ids[0..<77]), Array(ids[77..<154])]), try merged.tensor("te.last"), tol: 1e-4, "\(file) text encoder")
            let eps = GradMode.noGrad { unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample }
            assertClose(eps, try merged.tensor("unet.eps_t500"), tol: 1e-4, "\(file) unet")
            // …and it did change the model.
            XCTAssertGreaterThan((eps - (try ref.tensor("unet.eps_t500"))).square().sum().item(), 1e-4)
        }
    }

    func testForeignFilesAreRefusedClearly() throws {
        XCTAssertThrowsError(try LoRAFile(path: Fixtures.url("python_written.safetensors").path)) { e in
            XCTAssertTrue("\(e)".contains("not LoRA weights"), "\(e)")
        }
    }
}
