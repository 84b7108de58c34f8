// Conversions between Float and the 16-bit formats safetensors files and bf16 products use.

/// IEEE 754 binary16 bits → Float (exact: every half value is a float).
package func floatFromHalf(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 == 0 ? 1 : -1
    let exponent = Int(bits >> 10 & 0x1F)
    let mantissa = UInt32(bits & 0x3FF)
    switch exponent {
    case 0:  // zero or subnormal: mantissa × 2^-24
        return sign * Float(mantissa) * 0x1p-24
    case 0x1F:  // infinity or NaN (payload kept)
        return Float(bitPattern: UInt32(bits & 0x8000) << 16 | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: UInt32(bits & 0x8000) << 16 | UInt32(exponent + 112) << 23 | mantissa << 13)
    }
}

/// Float → IEEE 754 binary16 bits, rounding to nearest, ties to even; overflow gives infinity,
/// NaN stays NaN (quieted), values below the smallest subnormal round to signed zero.
package func halfFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(bits >> 16 & 0x8000)
    let exponent = Int(bits >> 23 & 0xFF) - 127 + 15  // re-biased for half
    let mantissa = bits & 0x7F_FFFF
    if bits & 0x7F80_0000 == 0x7F80_0000 {
        return mantissa == 0 ? sign | 0x7C00 : sign | 0x7E00 | UInt16(mantissa >> 13)
    }
    if exponent >= 0x1F { return sign | 0x7C00 }
    if exponent <= 0 {
        // Subnormal half: the value is significand × 2^(exponent - 38), that is
        // (significand >> (14 - exponent)) × 2^-24, the half subnormal step.
        guard exponent >= -10 else { return sign }
        let significand = mantissa | 0x80_0000
        let shift = UInt32(14 - exponent)
        return sign | UInt16(roundShifted(significand, by: shift))
    }
    // Normal: a carry out of the mantissa correctly bumps the exponent (up to infinity).
    return sign | UInt16(roundShifted(UInt32(exponent) << 23 | mantissa, by: 13))
}

/// BFloat16 bits → Float (exact: the top half of a float).
package func floatFromBFloat16(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float → BFloat16 bits, rounding to nearest, ties to even; NaN stays NaN (quieted). Branch-free but for NaN, so
/// the bf16 products' operand rounding (a loop over every element) vectorises.
@inlinable
public func bfloat16FromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the dropped half is above
    // one half, or equal to it with the kept half odd; a carry out of the mantissa bumps the exponent (up to ∞).
    return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}

/// `value >> shift`, rounded to nearest with ties to even.
private func roundShifted(_ value: UInt32, by shift: UInt32) -> UInt32 {
    let kept = value >> shift
    let dropped = value & ((1 << shift) - 1)
    let half: UInt32 = 1 << (shift - 1)
    return dropped > half || (dropped == half && kept & 1 == 1) ? kept + 1 : kept
}
