// Broadcasting arithmetic with autograd. Gradients of broadcast operands are summed back to
// the operand's shape (`sumToShape`).

import Foundation

enum NegOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { -x }
    @inline(__always) static func apply(_ x: Float) -> Float { -x }
}
enum ExpOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { VectorMath.exp(x) }
    @inline(__always) static func apply(_ x: Float) -> Float { Foundation.exp(x) }
}
enum LogOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 {
        var r = x
        for i in 0..<8 { r[i] = Foundation.log(x[i]) }
        return r
    }
    @inline(__always) static func apply(_ x: Float) -> Float { Foundation.log(x) }
}
enum SqrtOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { x.squareRoot() }
    @inline(__always) static func apply(_ x: Float) -> Float { x.squareRoot() }
}
enum SquareOp: UnaryOp {
    @inline(__always) static func apply(_ x: Vec8) -> Vec8 { x * x }
    @inline(__always) static func apply(_ x: Float) -> Float { x * x }
}

extension Tensor {
    /// Sums a broadcast gradient back down to `target` (the operand's shape).
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        let s = axes.isEmpty ? self : sum(axes: axes, keepDim: true)
        return s.reshaped(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = ElementwiseKernels.binary(AddOp.self, a, b)
        let (sa, sb) = (a.shape, b.shape)
        return out.recording("add", [a, b]) { g in [g.sumToShape(sa), g.sumToShape(sb)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = ElementwiseKernels.binary(SubOp.self, a, b)
        let (sa, sb) = (a.shape, b.shape)
        return out.recording("sub", [a, b]) { g in [g.sumToShape(sa), (-g).sumToShape(sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = ElementwiseKernels.binary(MulOp.self, a, b)
        let (sa, sb) = (a.shape, b.shape)
        let (da, db) = (a.detached(), b.detached())
        return out.recording("mul", [a, b]) { g in
            [a.requiresGrad ? (g * db).sumToShape(sa) : nil,
             b.requiresGrad ? (g * da).sumToShape(sb) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = ElementwiseKernels.binary(DivOp.self, a, b)
        let (sa, sb) = (a.shape, b.shape)
        let (da, db) = (a.detached(), b.detached())
        return out.recording("div", [a, b]) { g in
            [a.requiresGrad ? (g / db).sumToShape(sa) : nil,
             b.requiresGrad ? (-(g * da) / (db * db)).sumToShape(sb) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        ElementwiseKernels.unary(NegOp.self, a).recording("neg", [a]) { g in [-g] }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(scalar: b) }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(scalar: b) }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(scalar: b) }
    public static func / (a: Tensor, b: Float) -> Tensor { a * Tensor(scalar: 1 / b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) + b }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) - b }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(scalar: a) * b }

    public func exp() -> Tensor {
        let out = ElementwiseKernels.unary(ExpOp.self, self)
        let y = out.detached()
        return out.recording("exp", [self]) { g in [g * y] }
    }

    public func log() -> Tensor {
        let x = detached()
        return ElementwiseKernels.unary(LogOp.self, self).recording("log", [self]) { g in [g / x] }
    }

    public func sqrt() -> Tensor {
        let out = ElementwiseKernels.unary(SqrtOp.self, self)
        let y = out.detached()
        return out.recording("sqrt", [self]) { g in [g / (y * 2)] }
    }

    public func square() -> Tensor {
        let x = detached()
        return ElementwiseKernels.unary(SquareOp.self, self).recording("square", [self]) { g in
            [g * x * 2]
        }
    }

    /// Elementwise maximum of two tensors (broadcasting). Ties send the gradient to `a`.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = ElementwiseKernels.binary(MaxOp.self, a, b)
        let (sa, sb) = (a.shape, b.shape)
        let mask = ElementwiseKernels.binary(EqualMaskOp.self, out, a)
        return out.recording("maximum", [a, b]) { g in
            [(g * mask).sumToShape(sa), (g * (1 - mask)).sumToShape(sb)]
        }
    }

    /// Elementwise clamp to [lo, hi]; the gradient passes where the value was inside.
    public func clamped(_ lo: Float, _ hi: Float) -> Tensor {
        let x = contiguous().detached()
        let out = Tensor(uninitialized: shape)
        let mask = Tensor(uninitialized: shape)
        let p = x.dataPointer, o = out.dataPointer, m = mask.dataPointer
        for i in 0..<count {
            let v = p[i]
            o[i] = Swift.min(Swift.max(v, lo), hi)
            m[i] = (v >= lo && v <= hi) ? 1 : 0
        }
        return out.recording("clamp", [self]) { g in [g * mask] }
    }

    /// Mean squared error between two tensors of one shape (the diffusion training loss).
    public static func mseLoss(_ a: Tensor, _ b: Tensor) -> Tensor {
        (a - b).square().mean()
    }

    /// The same with one weight per batch row (NoiseSchedule.minSNRWeights): mean over rows of
    /// w_b·mean((a_b − b_b)²), diffusers' `(mse_loss(…, reduction="none").mean(dims) * weights).mean()`.
    public static func mseLoss(_ a: Tensor, _ b: Tensor, rowWeights: [Float]) -> Tensor {
        precondition(rowWeights.count == a.shape[0] && a.shape == b.shape, "one weight per row of equally shaped tensors")
        let shape = [rowWeights.count] + Array(repeating: 1, count: a.rank - 1)
        return ((a - b).square() * Tensor(rowWeights, shape: shape)).mean()
    }
}
