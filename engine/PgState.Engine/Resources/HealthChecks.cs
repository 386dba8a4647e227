using PgState.Engine.Host;

namespace PgState.Engine.Resources;

public enum CheckStatus
{
    Ok,
    Warn,
    Fail,
    Skipped,
}

/// <summary>One health check: a stable id, a status, a message a person can act on, the measured value.</summary>
public sealed record CheckResult(string Id, CheckStatus Status, string Message, string? Value = null);

public sealed record CheckOptions(bool ProbeArchive, TimeSpan ProbeTimeout);

/// <summary>A bound module that can also say whether what it manages really works.</summary>
public interface ICheckedModule
{
    Task<IReadOnlyList<CheckResult>> CheckAsync(IHostSession host, CheckOptions options, CancellationToken cancellationToken);
}
