using System.Globalization;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Replication;

public sealed record DesiredRole(string Name, bool Login, bool Replication, bool Superuser, int ConnectionLimit, string? ValidUntil,
    IReadOnlyList<string> InRoles, SecretReference? Password, bool UpdateAlways, bool Present);

public sealed record LiveRole(string Name, bool Login, bool Replication, bool Superuser, int ConnectionLimit, DateTime? ValidUntil,
    IReadOnlyList<string> MemberOf, int OwnedObjects);

/// <summary>Whether the stored password equals the desired one: known, or unknown (no access to pg_authid).</summary>
public enum PasswordState
{
    Same,
    Differs,
    Unknown,
}

public sealed record DesiredSlot(string Name, string Type, bool ReserveWal, string? Plugin, string? Database, bool Present);

public sealed record LiveSlot(string Name, string Type, string? Plugin, string? Database, bool Active, int? ActivePid, string? WalStatus, long? RetainedBytes);

public abstract record ReplicationAction;

public sealed record CreateRole(DesiredRole Role) : ReplicationAction;

public sealed record AlterRole(DesiredRole Role) : ReplicationAction;

public sealed record SetPassword(DesiredRole Role) : ReplicationAction;

public sealed record GrantRole(string Role, string Group) : ReplicationAction;

public sealed record DropRole(string Role, string? BlockedBecause) : ReplicationAction;

public sealed record CreateSlot(DesiredSlot Slot) : ReplicationAction;

public sealed record DropSlot(string Name, string? BlockedBecause) : ReplicationAction;

/// <summary>Roles and slots: pure diff, unit-testable. Passwords appear only as (sensitive).</summary>
public static class ReplicationDiff
{
    public const string Module = "replication";

    public static string Attributes(bool login, bool replication, bool superuser, int limit, string? validUntil) =>
        string.Join(' ', new[]
        {
            login ? "LOGIN" : "NOLOGIN", replication ? "REPLICATION" : "NOREPLICATION", superuser ? "SUPERUSER" : "NOSUPERUSER",
            limit >= 0 ? $"CONNECTION LIMIT {limit}" : null, validUntil is null ? null : $"VALID UNTIL {validUntil}",
        }.Where(s => s is not null));

    public static void DiffRoles(IReadOnlyList<DesiredRole> desired, IReadOnlyDictionary<string, LiveRole> live,
        IReadOnlyDictionary<string, PasswordState> passwords, List<ResourceChange> changes, List<PlanWarning> warnings)
    {
        foreach (var d in desired)
        {
            var address = $"roles.{d.Name}";
            live.TryGetValue(d.Name, out var l);
            if (!d.Present)
            {
                if (l is not null)
                {
                    var blocked = l.OwnedObjects > 0 ? $"it owns {l.OwnedObjects} object(s); reassign or drop them first (REASSIGN OWNED BY / DROP OWNED BY)" : null;
                    changes.Add(new ResourceChange(address, Module, ChangeAction.Delete, Attributes(l.Login, l.Replication, l.Superuser, l.ConnectionLimit, null), null, Activation.None,
                        blocked is null ? "DROP ROLE" : "BLOCKED: " + blocked)
                    { Payload = new DropRole(d.Name, blocked) });
                }
                continue;
            }
            var wanted = Attributes(d.Login, d.Replication, d.Superuser, d.ConnectionLimit, d.ValidUntil);
            if (l is null)
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Create, null, wanted + (d.Password is null ? "" : " PASSWORD (sensitive)"), Activation.None)
                { Payload = new CreateRole(d) });
                foreach (var group in d.InRoles)
                {
                    changes.Add(new ResourceChange($"{address}.member_of[{group}]", Module, ChangeAction.Create, null, group, Activation.None) { Payload = new GrantRole(d.Name, group) });
                }
                continue;
            }
            var validUntilDiffers = d.ValidUntil is not null && !SameTimestamp(d.ValidUntil, l.ValidUntil);
            var current = Attributes(l.Login, l.Replication, l.Superuser, l.ConnectionLimit, l.ValidUntil?.ToString("yyyy-MM-dd HH:mm:ssK", CultureInfo.InvariantCulture));
            if (l.Login != d.Login || l.Replication != d.Replication || l.Superuser != d.Superuser || l.ConnectionLimit != d.ConnectionLimit || validUntilDiffers)
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Update, current, wanted, Activation.None) { Payload = new AlterRole(d) });
            }
            if (d.Password is not null)
            {
                var state = passwords.GetValueOrDefault(d.Name, PasswordState.Unknown);
                if (state == PasswordState.Differs)
                {
                    changes.Add(new ResourceChange($"{address}.password", Module, ChangeAction.Update, "(sensitive)", "(sensitive)", Activation.None, "password differs", Sensitive: true)
                    { Payload = new SetPassword(d) });
                }
                else if (state == PasswordState.Unknown)
                {
                    if (d.UpdateAlways)
                    {
                        changes.Add(new ResourceChange($"{address}.password", Module, ChangeAction.Update, "(sensitive)", "(sensitive)", Activation.None,
                            "password: cannot compare (no access to pg_authid); set because password.update is always", Sensitive: true)
                        { Payload = new SetPassword(d) });
                    }
                    else
                    {
                        warnings.Add(new PlanWarning($"{address}.password", Module, "password: cannot compare (no access to pg_authid); left as it is (password.update: on-create)"));
                    }
                }
            }
            foreach (var group in d.InRoles.Where(g => !l.MemberOf.Contains(g)))
            {
                changes.Add(new ResourceChange($"{address}.member_of[{group}]", Module, ChangeAction.Create, null, group, Activation.None) { Payload = new GrantRole(d.Name, group) });
            }
        }
    }

    private static bool SameTimestamp(string desired, DateTime? live)
    {
        if (desired.Equals("infinity", StringComparison.OrdinalIgnoreCase))
        {
            return live == DateTime.MaxValue;
        }
        return live is { } l && DateTime.TryParse(desired, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)
            && d == l.ToUniversalTime();
    }

    public static void DiffSlots(IReadOnlyList<DesiredSlot> desired, IReadOnlyDictionary<string, LiveSlot> live, bool prune, long retentionWarnBytes,
        string maxSlotWalKeepSize, List<ResourceChange> changes, List<PlanWarning> warnings)
    {
        foreach (var d in desired)
        {
            var address = $"slots.{d.Name}";
            live.TryGetValue(d.Name, out var l);
            if (!d.Present)
            {
                if (l is not null)
                {
                    changes.Add(Drop(address, l));
                }
                continue;
            }
            var shape = d.Type == "logical" ? $"logical ({d.Plugin} on {d.Database})" : "physical";
            if (l is null)
            {
                changes.Add(new ResourceChange(address, Module, ChangeAction.Create, null, shape, Activation.None) { Payload = new CreateSlot(d) });
            }
            else if (l.Type != d.Type || (d.Type == "logical" && (l.Plugin != d.Plugin || l.Database != d.Database)))
            {
                var liveShape = l.Type == "logical" ? $"logical ({l.Plugin} on {l.Database})" : "physical";
                var blocked = l.Active ? $"BLOCKED: the slot is active (pid {l.ActivePid}); an active slot is never dropped" : "drop and create again";
                changes.Add(new ResourceChange(address, Module, ChangeAction.Replace, liveShape, shape, Activation.None, blocked)
                { Payload = l.Active ? new DropSlot(d.Name, blocked) : new CreateSlot(d) });
            }
        }
        if (prune)
        {
            foreach (var l in live.Values.Where(l => !desired.Any(d => d.Name == l.Name)).OrderBy(l => l.Name, StringComparer.Ordinal))
            {
                changes.Add(Drop($"slots.{l.Name}", l, "not in the manifest (slotsPrune: true)"));
            }
        }
        foreach (var l in live.Values.OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            if (l.WalStatus is "lost" or "unreserved")
            {
                warnings.Add(new PlanWarning($"slots.{l.Name}", Module, $"wal_status is {l.WalStatus}: the WAL this slot needs is {(l.WalStatus == "lost" ? "gone; its consumer must be rebuilt" : "about to be removed")}"));
            }
            if (l.RetainedBytes is { } retained && retained > retentionWarnBytes)
            {
                warnings.Add(new PlanWarning($"slots.{l.Name}", Module, $"retains {Bytes(retained)} of WAL (more than {Bytes(retentionWarnBytes)}){(l.Active ? "" : " and is inactive")}: pg_wal keeps growing until its consumer catches up or the slot is dropped"));
            }
        }
        if (live.Count > 0 && maxSlotWalKeepSize == "-1")
        {
            warnings.Add(new PlanWarning(null, Module, "max_slot_wal_keep_size is unlimited (-1) while slots exist: a stalled consumer can fill pg_wal and stop the server"));
        }
    }

    private static ResourceChange Drop(string address, LiveSlot l, string? why = null)
    {
        var shape = l.Type == "logical" ? $"logical ({l.Plugin} on {l.Database})" : "physical";
        var blocked = l.Active ? $"the slot is active (pid {l.ActivePid}); an active slot is never dropped" : null;
        return new ResourceChange(address, Module, ChangeAction.Delete, shape + (l.RetainedBytes is { } r ? $", retains {Bytes(r)}" : ""), null, Activation.None,
            blocked is null ? why : "BLOCKED: " + blocked)
        { Payload = new DropSlot(l.Name, blocked) };
    }

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.#} GB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.#} MB",
        >= 1L << 10 => $"{bytes / 1024.0:0.#} kB",
        _ => $"{bytes} bytes",
    };
}
