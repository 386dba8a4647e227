namespace PgState.Engine.Resources;

/// <summary>What a change does; the display symbol follows Terraform's.</summary>
public enum ChangeAction
{
    Create,
    Update,
    Delete,
    Replace,
}

/// <summary>What it takes for a written change to become active on the server.</summary>
public enum Activation
{
    None,
    Reload,
    Restart,
}

public static class ChangeActionExtensions
{
    public static string Symbol(this ChangeAction action) => action switch
    {
        ChangeAction.Create => "+",
        ChangeAction.Update => "~",
        ChangeAction.Delete => "-",
        ChangeAction.Replace => "-/+",
        _ => "?",
    };

    public static string Word(this ChangeAction action) => action.ToString().ToLowerInvariant();

    public static string Word(this Activation activation) => activation.ToString().ToLowerInvariant();
}

/// <summary>
/// One difference between desired and live state, as plans show and save it. Before is the live
/// value (null for create), After the desired one (null for delete). When Sensitive, both are
/// secret: modules put the real description in them and renderers alone print "(sensitive)".
/// </summary>
public sealed record ResourceChange(
    string Address,
    string Module,
    ChangeAction Action,
    string? Before,
    string? After,
    Activation Activation,
    string? Note = null,
    bool Sensitive = false);

/// <summary>A change as the engine carries it between plan and apply.</summary>
public interface IPlannedChange
{
    ResourceChange Change { get; }
}

/// <summary>A change and the typed payload its module needs to apply it. The payload stays in memory.</summary>
public sealed record PlannedChange<TPayload>(ResourceChange Change, TPayload Payload) : IPlannedChange
    where TPayload : notnull;

/// <summary>A value that is written but not active yet: a reload or a restart is pending.</summary>
public sealed record PendingActivation(string Address, string Module, string? Value, Activation Needs, string Note);

/// <summary>Something a reviewer must know that is not a change pgstate will make.</summary>
public sealed record PlanWarning(string? Address, string Module, string Message);

/// <summary>A module's typed answer: its changes with payloads, pending activations and warnings.</summary>
public sealed class Diff<TPayload>(string module)
    where TPayload : notnull
{
    private readonly List<PlannedChange<TPayload>> _changes = [];
    private readonly List<PendingActivation> _pending = [];
    private readonly List<PlanWarning> _warnings = [];

    public string Module { get; } = module;

    public IReadOnlyList<PlannedChange<TPayload>> Changes => _changes;

    public IReadOnlyList<PendingActivation> Pending => _pending;

    public IReadOnlyList<PlanWarning> Warnings => _warnings;

    public void Add(string address, ChangeAction action, string? before, string? after, Activation activation, TPayload payload, string? note = null, bool sensitive = false) =>
        _changes.Add(new PlannedChange<TPayload>(new ResourceChange(address, Module, action, before, after, activation, note, sensitive), payload));

    public void AddPending(string address, string? value, Activation needs, string note) =>
        _pending.Add(new PendingActivation(address, Module, value, needs, note));

    public void Warn(string? address, string message) => _warnings.Add(new PlanWarning(address, Module, message));
}

/// <summary>A module's answer for the engine: changes, pending activations, warnings, and a
/// deterministic digest of the live state they were computed from.</summary>
public sealed record ModuleDiff(
    IReadOnlyList<IPlannedChange> Changes,
    IReadOnlyList<PendingActivation> Pending,
    IReadOnlyList<PlanWarning> Warnings,
    string LiveDigest)
{
    public static ModuleDiff Empty { get; } = new([], [], [], "");
}
