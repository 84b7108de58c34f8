import Foundation

/// A small self-contained SVG line chart: several named series of (x, y) points, axes with ticks and a
/// legend. Used for training curves and the evaluation report.
///
/// ```swift
/// var plot = LinePlot(title: "Loss", xLabel: "step", yLabel: "loss")
/// plot.add("train", points: [(0, 4.1), (100, 2.3)])
/// try plot.svg().write(to: url, atomically: true, encoding: .utf8)
/// ```
public struct LinePlot {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = false
    public private(set) var series: [(name: String, points: [(Double, Double)])] = []

    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
    }

    public mutating func add(_ name: String, points: [(Double, Double)]) {
        series.append((name, points.filter { $0.0.isFinite && $0.1.isFinite && (!logX || $0.0 > 0) }))
    }

    /// The chart as an SVG document.
    public func svg(width: Double = 640, height: Double = 400) -> String {
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        let (left, right, top, bottom) = (64.0, 16.0, 36.0, 48.0)
        let all = series.flatMap(\.points)
        let fx: (Double) -> Double = logX ? { log10($0) } : { $0 }
        var (x0, x1) = (all.map { fx($0.0) }.min() ?? 0, all.map { fx($0.0) }.max() ?? 1)
        var (y0, y1) = (all.map(\.1).min() ?? 0, all.map(\.1).max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y1 = y0 + 1 }
        let pad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - pad, y1 + pad)
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (fx(x) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>
            <rect x="\(left)" y="\(top)" width="\(plotW)" height="\(plotH)" fill="none" stroke="#999"/>

            """
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, y = py(yv)
            out += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plotW)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            out += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(tick(yv))</text>\n"
            let xv = x0 + (x1 - x0) * Double(i) / 4, x = left + plotW * Double(i) / 4
            out += "<text x=\"\(x)\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\">\(tick(logX ? pow(10, xv) : xv))</text>\n"
        }
        out += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out +=
            "<text x=\"14\" y=\"\(top + plotH / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(top + plotH / 2))\">\(escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let color = colors[i % colors.count]
            let path = s.points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if s.points.count <= 30 {
                for p in s.points {
                    out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"\(color)\"/>", px(p.0), py(p.1))
                }
                out += "\n"
            }
            let ly = top + 14 + Double(i) * 16
            out +=
                "<line x1=\"\(left + plotW - 120)\" y1=\"\(ly - 4)\" x2=\"\(left + plotW - 100)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(left + plotW - 96)\" y=\"\(ly)\">\(escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    private func tick(_ v: Double) -> String {
        let a = abs(v)
        if a != 0 && (a >= 1e5 || a < 1e-2) { return String(format: "%.1e", v) }
        return a >= 100 ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
            of: ">", with: "&gt;")
    }
}
