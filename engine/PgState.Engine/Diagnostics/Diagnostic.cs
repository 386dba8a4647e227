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

/// <summary>A problem found in a manifest, with a stable code (see <see cref="DiagnosticCodes"/>) and a position when known.</summary>
public sealed record Diagnostic(DiagnosticCode Code, Severity Severity, string Message, SourcePosition? Position)
{
    public override string ToString()
    {
        var where = Position is null ? "" : Position + ": ";
        var level = Severity == Severity.Error ? "error" : "warning";
        return $"{where}{level} {Code.Id}: {Message}";
    }
}

public sealed class DiagnosticBag
{
    private readonly List<Diagnostic> _items = [];

    public IReadOnlyList<Diagnostic> Items => _items;

    public bool HasErrors => _items.Any(d => d.Severity == Severity.Error);

    public int ErrorCount => _items.Count(d => d.Severity == Severity.Error);

    public void Error(DiagnosticCode code, string message, SourcePosition? position) =>
        _items.Add(new Diagnostic(code, Severity.Error, message, position));

    public void Warning(DiagnosticCode code, string message, SourcePosition? position) =>
        _items.Add(new Diagnostic(code, Severity.Warning, message, position));

    public void Add(Diagnostic diagnostic) => _items.Add(diagnostic);

    public void AddRange(IEnumerable<Diagnostic> diagnostics) => _items.AddRange(diagnostics);

    /// <summary>Diagnostics in file, line, column order (duplicates removed), so output is stable.</summary>
    public IReadOnlyList<Diagnostic> Sorted() =>
        [.. _items.Distinct()
                  .OrderBy(d => d.Position?.File, StringComparer.Ordinal)
                  .ThenBy(d => d.Position?.Line ?? 0)
                  .ThenBy(d => d.Position?.Column ?? 0)
                  .ThenBy(d => d.Code.Id, StringComparer.Ordinal)
                  .ThenBy(d => d.Message, StringComparer.Ordinal)];
}

/// <summary>Thrown for a failure that must stop a command; the message is safe to print (it never holds a secret).</summary>
public sealed class PgStateException(string message, Exception? inner = null) : Exception(message, inner);
