using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Planning;

/// <summary>Which server a plan was computed against: apply of a saved plan refuses another one.</summary>
internal sealed record PlanTarget(string? SystemIdentifier, string DataDirectory, int Port, string Version)
{
    public string Describe() => $"system identifier {SystemIdentifier ?? "unknown"}, data directory {(DataDirectory.Length > 0 ? DataDirectory : "unknown")}, port {Port}";
}

/// <summary>The working plan for one host: ordered changes, pending activations, warnings and
/// the fingerprint of the live state it was computed from.</summary>
internal sealed record HostPlan(
    string Host,
    string Target,
    IReadOnlyList<ResourceChange> Changes,
    IReadOnlyList<PendingActivation> Pending,
    IReadOnlyList<PlanWarning> Warnings,
    string Fingerprint,
    RestartPolicy RestartPolicy)
{
    /// <summary>The changes with their payloads (empty for a plan read back from a file).</summary>
    public IReadOnlyList<IPlannedChange> Planned { get; init; } = [];

    /// <summary>The server the plan was computed against (null when unknown, e.g. an old plan file).</summary>
    public PlanTarget? Server { get; init; }

    /// <summary>Per-change fingerprints as saved in a plan file, by address.</summary>
    public IReadOnlyDictionary<string, string>? SavedFingerprints { get; init; }

    public int ToAdd => Changes.Count(c => c.Action is ChangeAction.Create or ChangeAction.Replace);

    public int ToChange => Changes.Count(c => c.Action == ChangeAction.Update);

    public int ToDestroy => Changes.Count(c => c.Action is ChangeAction.Delete or ChangeAction.Replace);

    /// <summary>Changes and pending values that only become active after a restart.</summary>
    public int NeedRestart => Changes.Count(c => c.Activation == Activation.Restart) + Pending.Count(p => p.Needs == Activation.Restart);

    /// <summary>True when apply would do something: a change, a pending reload, or a pending restart it is allowed to perform.</summary>
    public bool HasWork =>
        Changes.Count > 0
        || Pending.Any(p => p.Needs == Activation.Reload)
        || (RestartPolicy == RestartPolicy.Allowed && Pending.Any(p => p.Needs == Activation.Restart));

    public string SummaryLine => $"Plan: {ToAdd} to add, {ToChange} to change, {ToDestroy} to destroy.";

    public string? RestartLine => NeedRestart switch
    {
        0 => null,
        1 => "1 change needs a PostgreSQL restart.",
        var n => $"{n} changes need a PostgreSQL restart.",
    };
}
