// Reproduces torch.randn on a CPU torch.Generator().manual_seed(seed), so a --seed gives the
// same initial noise (and ancestral-sampler noise) as diffusers. Matches, in PyTorch:
//   aten/src/ATen/core/MT19937RNGEngine.h      mt19937 seeded as torch seeds it
//   aten/src/ATen/CPUGeneratorImpl.cpp         random() = one draw, random64() = (hi << 32) | lo
//   aten/src/ATen/core/TransformationHelper.h  uniform_real: (bits & mask) · 2^-digits
//   aten/src/ATen/native/cpu/DistributionTemplates.h  normal_kernel: for ≥ 16 floats, fill with
//       float uniforms, Box–Muller in blocks of 16 (u1 = 1 − data[j], u2 = data[j+8]), and
//       redo the last 16 when size % 16 ≠ 0; below 16, normal_distribution<double> per value
//       (Box–Muller with a cached second sample kept in the generator).

import Foundation

public struct TorchGenerator: RandomSource {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624
    /// Second Box–Muller sample of normal_distribution<double>, kept across calls as torch does.
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        // torch seeds mt19937 with the low 32 bits of the 64-bit seed.
        var s = UInt32(truncatingIfNeeded: seed)
        for i in 0..<624 {
            state[i] = s
            s = 1_812_433_253 &* (s ^ (s >> 30)) &+ UInt32(i + 1)
        }
    }

    public mutating func nextUInt32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    /// uniform_real_distribution<float>: 24 random bits.
    mutating func uniformFloat() -> Float { Float(nextUInt32() & 0xFF_FFFF) * (1.0 / 16_777_216.0) }

    /// uniform_real_distribution<double>: 53 bits of random64().
    mutating func uniformDouble() -> Double {
        let hi = UInt64(nextUInt32()), lo = UInt64(nextUInt32())
        return Double(((hi << 32) | lo) & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// normal_distribution<double> with the generator's cached second sample.
    mutating func normalDouble() -> Double {
        if let c = cachedNormal { cachedNormal = nil; return c }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>) {
        for i in buffer.indices { buffer[i] = uniformFloat() }
    }

    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>) {
        let n = buffer.count
        guard let p = buffer.baseAddress, n > 0 else { return }
        if n < 16 {
            for i in 0..<n { p[i] = Float(normalDouble()) }
            return
        }
        for i in 0..<n { p[i] = uniformFloat() }
        var i = 0
        while i + 16 <= n { TorchGenerator.boxMuller16(p + i); i += 16 }
        if n % 16 != 0 {
            let tail = p + (n - 16)
            for j in 0..<16 { tail[j] = uniformFloat() }
            TorchGenerator.boxMuller16(tail)
        }
    }

    /// normal_fill_16 in float arithmetic.
    private static func boxMuller16(_ d: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1 = 1 - d[j], u2 = d[j + 8]
            let radius = (-2 * Foundation.log(u1)).squareRoot()
            let theta = Float(2.0 * Double.pi) * u2
            d[j] = radius * Foundation.cos(theta)
            d[j + 8] = radius * Foundation.sin(theta)
        }
    }
}
