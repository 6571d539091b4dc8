// SIMD transcendental functions for hot loops (softmax, SiLU, GELU), where calling libm per
// element dominates. exp follows the Cephes expf range reduction: e^x = 2^n · e^r with
// |r| ≤ ln2/2 and a degree-6 polynomial for e^r; relative error ≈ 2e-7 over the float range.

public typealias Vec8 = SIMD8<Float>

public enum VectorMath {
    // Lane-wise max/min written as selects: they compile to vmaxps/vminps, whereas the
    // standard library's pointwiseMax/Min are out-of-line calls in the hot loop.
    @inline(__always)
    public static func max(_ a: Vec8, _ b: Vec8) -> Vec8 { a.replacing(with: b, where: a .< b) }

    @inline(__always)
    public static func min(_ a: Vec8, _ b: Vec8) -> Vec8 { a.replacing(with: b, where: a .> b) }

    @inline(__always)
    public static func exp(_ x: Vec8) -> Vec8 {
        // Clamp so 2^n stays a normal float; min/max map to single vector instructions.
        var v = VectorMath.min(VectorMath.max(x, Vec8(repeating: -87.3365447505531)), Vec8(repeating: 88.3762626647949))
        // n = round(x·log2 e) by the 1.5·2^23 trick: adding it leaves n in the low mantissa
        // bits, with no rounding instruction and no float→int conversion.
        let magic = Vec8(repeating: 12_582_912)
        let biased = v * 1.44269504088896341 + magic
        let n = biased - magic
        // r = x − n·ln2 in two parts for precision
        v = v - n * 0.693359375
        v = v + n * 2.12194440e-4
        let z = v * v
        // Horner steps as fused multiply-adds (vfmadd on x86-64-v3).
        var y = Vec8(repeating: 1.9875691500e-4)
        y = Vec8(repeating: 1.3981999507e-3).addingProduct(y, v)
        y = Vec8(repeating: 8.3334519073e-3).addingProduct(y, v)
        y = Vec8(repeating: 4.1665795894e-2).addingProduct(y, v)
        y = Vec8(repeating: 1.6666665459e-1).addingProduct(y, v)
        y = Vec8(repeating: 5.0000001201e-1).addingProduct(y, v)
        y = (v + 1).addingProduct(y, z)
        // 2^n: (n + 127) << 23; the magic's own bits shift out past bit 31.
        let bits = unsafeBitCast(biased, to: SIMD8<UInt32>.self)
        let pow2n = unsafeBitCast((bits &+ 127) &<< 23, to: Vec8.self)
        return y * pow2n
    }

    @inline(__always)
    public static func exp(_ x: Float) -> Float { Foundation.exp(x) }

    @inline(__always)
    public static func sigmoid(_ x: Vec8) -> Vec8 { 1 / (1 + exp(-x)) }

    @inline(__always)
    public static func tanh(_ x: Vec8) -> Vec8 {
        // tanh(x) = 1 - 2/(e^{2x}+1); clamp keeps e^{2x} finite.
        let c = x.clamped(lowerBound: Vec8(repeating: -15), upperBound: Vec8(repeating: 15))
        return 1 - 2 / (exp(2 * c) + 1)
    }

    /// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7): erf z = 1 − t(a₁ + t(a₂ + …))·e^{−z²},
    /// t = 1/(1 + p·z), z = |x|, odd in x. For exact GELU, where libm's erff per element was
    /// 5% of a troupe-mini generation.
    @inline(__always)
    public static func erf(_ x: Vec8) -> Vec8 {
        let z = VectorMath.max(x, -x)
        let t = 1 / (1 + 0.3275911 * z)
        var poly = Vec8(repeating: 1.061405429)
        poly = Vec8(repeating: -1.453152027).addingProduct(poly, t)
        poly = Vec8(repeating: 1.421413741).addingProduct(poly, t)
        poly = Vec8(repeating: -0.284496736).addingProduct(poly, t)
        poly = Vec8(repeating: 0.254829592).addingProduct(poly, t)
        let y = 1 - poly * t * exp(-z * z)
        return y.replacing(with: -y, where: x .< 0)
    }
}

import Foundation
