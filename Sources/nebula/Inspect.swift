import ArgumentParser

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tensors of a safetensors file.")
    @Argument(help: "A .safetensors file.") var file: String
    func run() throws {}
}
