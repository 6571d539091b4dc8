// Random sources for tensor fills. `RandomSource` is the hook: initialisation and noise take
// any source, so a PyTorch-reproducing generator (mt19937 + torch's normal sampling) can be
// dropped in by the sampling code. `SplitMixRandom` is the engine's own fast, seedable source.

import Foundation

public protocol RandomSource {
    /// Uniform floats in [0, 1).
    mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Standard normal floats.
    mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>)
}

/// SplitMix64 bits, Box–Muller normals. Deterministic for a seed on every platform.
public struct SplitMixRandom: RandomSource {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>) {
        for i in buffer.indices { buffer[i] = nextFloat() }
    }

    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>) {
        var i = 0
        while i < buffer.count {
            let u1 = Double(next() >> 11) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53
            let r = (-2 * Foundation.log(1 - u1)).squareRoot()
            buffer[i] = Float(r * Foundation.cos(2 * .pi * u2))
            if i + 1 < buffer.count { buffer[i + 1] = Float(r * Foundation.sin(2 * .pi * u2)) }
            i += 2
        }
    }
}

extension Tensor {
    public static func randn<R: RandomSource>(_ shape: [Int], using rng: inout R) -> Tensor {
        let t = Tensor(uninitialized: shape)
        rng.fillNormal(t.storage.buffer)
        return t
    }

    /// Uniform in [low, high).
    public static func rand<R: RandomSource>(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout R) -> Tensor {
        let t = Tensor(uninitialized: shape)
        rng.fillUniform(t.storage.buffer)
        if low != 0 || high != 1 {
            let p = t.dataPointer
            for i in 0..<t.count { p[i] = low + (high - low) * p[i] }
        }
        return t
    }
}
