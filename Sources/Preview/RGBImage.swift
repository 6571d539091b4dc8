// An 8-bit RGB or RGBA image in row-major interleaved order: the pixel currency of Preview.

public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// 3 (RGB) or 4 (RGBA).
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
        precondition(channels == 3 || channels == 4, "RGBImage holds RGB or RGBA")
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int = 3, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: fill, count: width * height * channels))
    }
}
