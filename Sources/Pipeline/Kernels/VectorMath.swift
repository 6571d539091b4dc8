// SIMD transcendental functions for hot loops (softmax, SiLU, GELU), where calling libm per
// element dominates. exp follows the Cephes expf range reduction: e^x = 2^n · e^r with
// |r| ≤ ln2/2 and a degree-6 polynomial for e^r; relative error ≈ 2e-7 over the float range.

public typealias Vec8 = SIMD8<Float>

public enum VectorMath {
    @inline(__always)
    public static func exp(_ x: Vec8) -> Vec8 {
        let maxX: Float = 88.3762626647949, minX: Float = -87.3365447505531
        var v = x.replacing(with: Vec8(repeating: maxX), where: x .> maxX)
        v = v.replacing(with: Vec8(repeating: minX), where: v .< minX)
        let log2e: Float = 1.44269504088896341
        // n = round(x / ln 2)
        let fx = (v * log2e + 0.5).rounded(.down)
        // r = x - n·ln2 in two parts for precision
        v = v - fx * 0.693359375
        v = v + fx * 2.12194440e-4
        let z = v * v
        var y = Vec8(repeating: 1.9875691500e-4)
        y = y * v + 1.3981999507e-3
        y = y * v + 8.3334519073e-3
        y = y * v + 4.1665795894e-2
        y = y * v + 1.6666665459e-1
        y = y * v + 5.0000001201e-1
        y = y * z + v + 1
        // scale by 2^n through the exponent bits
        let n = SIMD8<Int32>(truncatingIfNeeded: SIMD8<Int>(fx.rounded(.towardZero)))
        let bits = (n &+ 127) &<< 23
        let pow2n = unsafeBitCast(bits, to: Vec8.self)
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
}

import Foundation
