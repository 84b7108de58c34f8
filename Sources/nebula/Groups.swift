import ArgumentParser

/// `nebula train …`: one subcommand per stage.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a stage of the system.",
        subcommands: [TrainLanguageModel.self, TrainAutoencoder.self, TrainDiffusion.self, TrainDistill.self, TrainOnePass.self, TrainClassifier.self]
    )
}

/// `nebula eval …`: one subcommand per stage.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a stage of the system.",
        subcommands: [EvaluateLanguageModel.self, EvaluateGeneration.self, EvaluateInfilling.self, EvaluateControl.self]
    )
}
