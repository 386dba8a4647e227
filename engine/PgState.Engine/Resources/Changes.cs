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
/// One difference between desired and live state. Before is the live value (null for create),
/// After the desired one (null for delete). Sensitive values are never rendered.
/// Payload is what the module needs to apply the change; it stays in memory.
/// </summary>
public sealed record ResourceChange(
    string Address,
    string Module,
    ChangeAction Action,
    string? Before,
    string? After,
    Activation Activation,
    string? Note = null,
    bool Sensitive = false)
{
    public object? Payload { get; init; }
}

/// <summary>A value that is written but not active yet: a reload or a restart is pending.</summary>
public sealed record PendingActivation(string Address, string Module, string? Value, Activation Needs, string Note);

/// <summary>Something a reviewer must know that is not a change pgstate will make.</summary>
public sealed record PlanWarning(string? Address, string Module, string Message);

/// <summary>A module's answer for one host: its changes, pending activations, warnings,
/// and a digest of the live state they were computed from.</summary>
public sealed record ModuleDiff(
    IReadOnlyList<ResourceChange> Changes,
    IReadOnlyList<PendingActivation> Pending,
    IReadOnlyList<PlanWarning> Warnings,
    string LiveDigest)
{
    public static ModuleDiff Empty { get; } = new([], [], [], "");
}
