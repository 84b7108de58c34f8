/// A binary min-heap: `pop()` returns the smallest element.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }

    init() {}

    /// A heap of `elements`, built in linear time.
    init(_ elements: [Element]) {
        items = elements
        for index in stride(from: items.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(items[child] < items[parent]) { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            if left >= items.count { return }
            var child = left
            if left + 1 < items.count && items[left + 1] < items[left] { child = left + 1 }
            if !(items[child] < items[parent]) { return }
            items.swapAt(child, parent)
            parent = child
        }
    }
}
