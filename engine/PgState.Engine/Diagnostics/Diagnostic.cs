namespace PgState.Engine.Diagnostics;

public enum Severity
{
    Error,
    Warning,
}

/// <summary>A place in a manifest file; line and column are 1-based.</summary>
public sealed record SourcePosition(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>A problem found in a manifest, with a stable code (PGS001…) and a position when known.</summary>
public sealed record Diagnostic(string Code, Severity Severity, string Message, SourcePosition? Position)
{
    public override string ToString()
    {
        var where = Position is null ? "" : Position + ": ";
        var level = Severity == Severity.Error ? "error" : "warning";
        return $"{where}{level} {Code}: {Message}";
    }
}

public sealed class DiagnosticBag
{
    private readonly List<Diagnostic> _items = [];

    public IReadOnlyList<Diagnostic> Items => _items;

    public bool HasErrors => _items.Any(d => d.Severity == Severity.Error);

    public void Error(string code, string message, SourcePosition? position) =>
        _items.Add(new Diagnostic(code, Severity.Error, message, position));

    public void Warning(string code, string message, SourcePosition? position) =>
        _items.Add(new Diagnostic(code, Severity.Warning, message, position));

    public void AddRange(IEnumerable<Diagnostic> diagnostics) => _items.AddRange(diagnostics);

    /// <summary>Diagnostics in file, line, column order, so output is stable.</summary>
    public IReadOnlyList<Diagnostic> Sorted() =>
        [.. _items.OrderBy(d => d.Position?.File, StringComparer.Ordinal)
                  .ThenBy(d => d.Position?.Line ?? 0)
                  .ThenBy(d => d.Position?.Column ?? 0)
                  .ThenBy(d => d.Code, StringComparer.Ordinal)];
}

/// <summary>Thrown for a failure that must stop a command; the message is safe to print.</summary>
public sealed class PgStateException(string message, Exception? inner = null) : Exception(message, inner);
