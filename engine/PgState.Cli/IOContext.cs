namespace PgState.Cli;

/// <summary>Where a command reads and writes; tests pass string writers and a fake environment.</summary>
internal sealed record IOContext(
    TextReader Input,
    TextWriter Output,
    TextWriter Error,
    bool InputIsTerminal,
    bool OutputIsTerminal,
    Func<string, string?> Environment,
    bool ErrorIsTerminal = false,
    bool OwnsProcess = false)
{
    public static IOContext FromConsole() => new(
        Console.In,
        Console.Out,
        Console.Error,
        !Console.IsInputRedirected,
        !Console.IsOutputRedirected,
        System.Environment.GetEnvironmentVariable,
        !Console.IsErrorRedirected,
        OwnsProcess: true);

    /// <summary>Colour only on a terminal, and never when NO_COLOR is set to a non-empty value.</summary>
    public bool Colour => OutputIsTerminal && string.IsNullOrEmpty(Environment("NO_COLOR"));
}
