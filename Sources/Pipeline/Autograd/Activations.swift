// SiLU, GELU (erf and tanh forms), QuickGELU (x·σ(1.702x), CLIP's "quick_gelu"), each with
// its analytic derivative. Matches torch.nn.functional.silu / gelu(approximate=none|tanh).

import Foundation

enum SiLUOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { x * VectorMath.sigmoid(x) }
    @inline(__always) static func apply(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }
}
enum SiLUGradOp: UnaryOp {  // σ(x)·(1 + x·(1 − σ(x)))
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { let s = VectorMath.sigmoid(x); return s * (1 + x * (1 - s)) }
    @inline(__always) static func apply(_ x: Float) -> Float { let s = 1 / (1 + Foundation.exp(-x)); return s * (1 + x * (1 - s)) }
}
enum QuickGELUOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { x * VectorMath.sigmoid(1.702 * x) }
    @inline(__always) static func apply(_ x: Float) -> Float { x / (1 + Foundation.exp(-1.702 * x)) }
}
enum QuickGELUGradOp: UnaryOp {  // σ(ax) + a·x·σ(ax)(1 − σ(ax))
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { let s = VectorMath.sigmoid(1.702 * x); return s + 1.702 * x * s * (1 - s) }
    @inline(__always) static func apply(_ x: Float) -> Float { let s = 1 / (1 + Foundation.exp(-1.702 * x)); return s + 1.702 * x * s * (1 - s) }
}
enum GELUErfOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { 0.5 * x * (1 + VectorMath.erf(x * 0.70710678118654752)) }
    @inline(__always) static func apply(_ x: Float) -> Float { 0.5 * x * (1 + erf(x * 0.70710678118654752)) }
}
enum GELUErfGradOp: UnaryOp {  // Φ(x) + x·φ(x)
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 {
        0.5 * (1 + VectorMath.erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * VectorMath.exp(-0.5 * x * x)
    }
    @inline(__always) static func apply(_ x: Float) -> Float {
        0.5 * (1 + erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * Foundation.exp(-0.5 * x * x)
    }
}
enum GELUTanhOp: UnaryOp {  // 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 {
        0.5 * x * (1 + VectorMath.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
    }
    @inline(__always) static func apply(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
    }
}
enum GELUTanhGradOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 {
        let u = 0.79788456080286536 * (x + 0.044715 * x * x * x)
        let t = VectorMath.tanh(u)
        let du: Vec8 = 0.79788456080286536 * (1 + 0.134145 * x * x)
        let sech2: Vec8 = 1 - t * t
        let half: Vec8 = 0.5 * (1 + t)
        return half + 0.5 * x * sech2 * du
    }
    @inline(__always) static func apply(_ x: Float) -> Float {
        let u = 0.79788456080286536 * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.79788456080286536 * (1 + 3 * 0.044715 * x * x)
    }
}

public enum Activation: String, Sendable, Codable {
    case silu, gelu, geluTanh = "gelu_tanh", quickGELU = "quick_gelu"
}

extension Tensor {
    private func activation<F: UnaryOp, D: UnaryOp>(_ name: String, _ f: F.Type, _ d: D.Type) -> Tensor {
        let x = contiguous().detached()
        return ElementwiseKernels.unary(F.self, x).recording(name, [self]) { g in
            [g * ElementwiseKernels.unary(D.self, x)]
        }
    }

    public func silu() -> Tensor { activation("silu", SiLUOp.self, SiLUGradOp.self) }
    public func gelu() -> Tensor { activation("gelu", GELUErfOp.self, GELUErfGradOp.self) }
    public func geluTanh() -> Tensor { activation("gelu_tanh", GELUTanhOp.self, GELUTanhGradOp.self) }
    public func quickGELU() -> Tensor { activation("quick_gelu", QuickGELUOp.self, QuickGELUGradOp.self) }

    public func sigmoid() -> Tensor { Tensor(scalar: 1) / ((-self).exp() + 1) }

    public func activated(_ a: Activation) -> Tensor {
        switch a {
        case .silu: return silu()
        case .gelu: return gelu()
        case .geluTanh: return geluTanh()
        case .quickGELU: return quickGELU()
        }
    }
}
