using Newtonsoft.Json.Linq;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Replication;

/// <summary>spec.roles, spec.slots: the replication role (password as a SCRAM verifier) and replication slots.</summary>
public sealed class ReplicationModule : IModule
{
    public string Name => ReplicationDiff.Module;

    // After settings (a logical slot needs wal_level=logical), before hba.
    public int Order => 55;

    public IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics)
    {
        var spec = host.Document.Spec;
        var roles = new List<DesiredRole>();
        foreach (var node in spec["roles"] as JArray ?? [])
        {
            var r = (JObject)node;
            var name = (string)r["name"]!;
            if (roles.Any(x => x.Name == name))
            {
                diagnostics.Error("PGS401", $"role {name} is listed twice", r.PositionOf());
                continue;
            }
            var password = r["password"] as JObject;
            if (password is not null && (password["fromEnv"] is null) == (password["fromFile"] is null))
            {
                diagnostics.Error("PGS402", $"roles[{name}].password: give exactly one of fromEnv, fromFile", password.PositionOf());
                continue;
            }
            roles.Add(new DesiredRole(name, (bool?)r["login"] ?? true, (bool?)r["replication"] ?? false, (bool?)r["superuser"] ?? false,
                (int?)r["connectionLimit"] ?? -1, (string?)r["validUntil"], (r["inRoles"] as JArray)?.Select(t => (string)t!).ToList() ?? [],
                password is null ? null : new SecretReference((string?)password["fromEnv"], (string?)password["fromFile"]),
                (string?)password?["update"] == "always", (string?)r["state"] != "absent"));
        }
        var slots = new List<DesiredSlot>();
        foreach (var node in spec["slots"] as JArray ?? [])
        {
            var s = (JObject)node;
            var name = (string)s["name"]!;
            var type = (string?)s["type"] ?? "physical";
            if (slots.Any(x => x.Name == name))
            {
                diagnostics.Error("PGS403", $"slot {name} is listed twice", s.PositionOf());
                continue;
            }
            if (type == "logical" && (s["plugin"] is null || s["database"] is null) && (string?)s["state"] != "absent")
            {
                diagnostics.Error("PGS404", $"logical slot {name} needs plugin and database", s.PositionOf());
                continue;
            }
            if (type == "physical" && (s["plugin"] is not null || s["database"] is not null))
            {
                diagnostics.Error("PGS404", $"physical slot {name} takes no plugin or database", (s.Property("plugin") ?? s.Property("database")).PositionOf());
                continue;
            }
            slots.Add(new DesiredSlot(name, type, (bool?)s["reserveWal"] ?? true, (string?)s["plugin"], (string?)s["database"], (string?)s["state"] != "absent"));
        }
        var prune = (bool?)spec["slotsPrune"] ?? false;
        var warn = Sizes.Parse((string?)spec["slotRetentionWarn"] ?? "10GB");
        return roles.Count == 0 && slots.Count == 0 && !prune ? null : new BoundReplication(roles, slots, prune, warn);
    }

}

internal sealed class BoundReplication(IReadOnlyList<DesiredRole> roles, IReadOnlyList<DesiredSlot> slots, bool prune, long retentionWarnBytes) : IBoundModule
{
    public string Name => ReplicationDiff.Module;

    public Task ValidateLiveAsync(IHostSession host, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        foreach (var role in roles.Where(r => r.Present && r.Password is not null))
        {
            try
            {
                _ = role.Password!.Resolve(host.Environment);
            }
            catch (PgStateException e)
            {
                diagnostics.Error("PGS405", $"role {role.Name}: {e.Message}", null);
            }
        }
        return Task.CompletedTask;
    }

    public async Task<ModuleDiff> PlanAsync(IHostSession host, CancellationToken cancellationToken)
    {
        var names = roles.Select(r => r.Name).ToArray();
        var batch = new NpgsqlBatch(host.Connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "select r.rolname::text, r.rolcanlogin, r.rolreplication, r.rolsuper, r.rolconnlimit, r.rolvaliduntil, " +
            "array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), " +
            "(select count(*)::int from pg_shdepend d where d.refobjid = r.oid and d.deptype = 'o') " +
            "from pg_roles r where r.rolname = any($1)")
        { Parameters = { new() { Value = names } } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "select slot_name::text, slot_type, plugin::text, database::text, active, active_pid, wal_status, " +
            "case when restart_lsn is null then null else pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_receive_lsn() else pg_current_wal_lsn() end, restart_lsn)::bigint end, " +
            "current_setting('max_slot_wal_keep_size') from pg_replication_slots"));
        var canReadPasswords = host.Server.IsSuperuser;
        if (canReadPasswords)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("select rolname::text, rolpassword from pg_authid where rolname = any($1)") { Parameters = { new() { Value = names } } });
        }
        var liveRoles = new Dictionary<string, LiveRole>(StringComparer.Ordinal);
        var liveSlots = new Dictionary<string, LiveSlot>(StringComparer.Ordinal);
        var stored = new Dictionary<string, string?>(StringComparer.Ordinal);
        var maxKeep = "-1";
        await using (batch)
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var validUntil = reader.IsDBNull(5) ? (DateTime?)null : reader.GetFieldValue<DateTime>(5);
                liveRoles[reader.GetString(0)] = new LiveRole(reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3),
                    reader.GetInt32(4), validUntil, reader.GetFieldValue<string[]>(6), reader.GetInt32(7));
            }
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                liveSlots[reader.GetString(0)] = new LiveSlot(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetBoolean(4), reader.IsDBNull(5) ? null : reader.GetInt32(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetInt64(7));
                maxKeep = reader.GetString(8);
            }
            if (canReadPasswords && await reader.NextResultAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    stored[reader.GetString(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
                }
            }
        }
        if (liveSlots.Count == 0)
        {
            await using var keep = new NpgsqlCommand("select current_setting('max_slot_wal_keep_size')", host.Connection);
            maxKeep = (string)(await keep.ExecuteScalarAsync(cancellationToken))!;
        }
        var passwords = new Dictionary<string, PasswordState>(StringComparer.Ordinal);
        foreach (var role in roles.Where(r => r.Password is not null && liveRoles.ContainsKey(r.Name)))
        {
            passwords[role.Name] = !canReadPasswords
                ? PasswordState.Unknown
                : stored.GetValueOrDefault(role.Name) is { } verifier && Scram.Matches(verifier, role.Password!.Resolve(host.Environment))
                    ? PasswordState.Same
                    : PasswordState.Differs;
        }
        var changes = new List<ResourceChange>();
        var warnings = new List<PlanWarning>();
        ReplicationDiff.DiffRoles(roles, liveRoles, passwords, changes, warnings);
        ReplicationDiff.DiffSlots(slots, liveSlots, prune, retentionWarnBytes, maxKeep, changes, warnings);
        // The digest covers what the plan depends on; stored verifiers are hashed, never kept in clear.
        var digest = string.Join(';', liveRoles.Values.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => $"{r.Name}:{r.Login}{r.Replication}{r.Superuser}{r.ConnectionLimit}{string.Join(',', r.MemberOf)}:{passwords.GetValueOrDefault(r.Name)}"))
            + "|" + string.Join(';', liveSlots.Values.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => $"{s.Name}:{s.Type}:{s.Plugin}:{s.Database}:{s.Active}"));
        return new ModuleDiff(changes, [], warnings, digest);
    }

    private static string Ident(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

    private static string Literal(string value) => "'" + value.Replace("'", "''") + "'";

    public async Task<string?> ApplyAsync(IHostSession host, ResourceChange change, CancellationToken cancellationToken)
    {
        switch (change.Payload)
        {
            case CreateRole c:
                await ExecAsync(host.Connection, $"CREATE ROLE {Ident(c.Role.Name)} WITH {RoleOptions(c.Role)}{PasswordClause(c.Role, host)}", cancellationToken);
                return null;
            case AlterRole a:
                await ExecAsync(host.Connection, $"ALTER ROLE {Ident(a.Role.Name)} WITH {RoleOptions(a.Role)}", cancellationToken);
                return null;
            case SetPassword p:
                await ExecAsync(host.Connection, $"ALTER ROLE {Ident(p.Role.Name)} WITH{PasswordClause(p.Role, host)}", cancellationToken);
                return null;
            case GrantRole g:
                await ExecAsync(host.Connection, $"GRANT {Ident(g.Group)} TO {Ident(g.Role)}", cancellationToken);
                return null;
            case DropRole d:
                if (d.BlockedBecause is not null)
                {
                    throw new PgStateException($"refused to drop role {d.Role}: {d.BlockedBecause}");
                }
                await ExecAsync(host.Connection, $"DROP ROLE {Ident(d.Role)}", cancellationToken);
                return null;
            case CreateSlot s when change.Action == ChangeAction.Replace:
                await ExecAsync(host.Connection, $"select pg_drop_replication_slot({Literal(s.Slot.Name)})", cancellationToken);
                await CreateSlotAsync(host, s.Slot, cancellationToken);
                return null;
            case CreateSlot s:
                await CreateSlotAsync(host, s.Slot, cancellationToken);
                return null;
            case DropSlot d:
                if (d.BlockedBecause is not null)
                {
                    throw new PgStateException($"refused to drop slot {d.Name}: {d.BlockedBecause}");
                }
                await ExecAsync(host.Connection, $"select pg_drop_replication_slot({Literal(d.Name)})", cancellationToken);
                return null;
            default:
                throw new InvalidOperationException("unknown replication change");
        }
    }

    private static async Task CreateSlotAsync(IHostSession host, DesiredSlot slot, CancellationToken cancellationToken)
    {
        if (slot.Type == "physical")
        {
            await ExecAsync(host.Connection, $"select pg_create_physical_replication_slot({Literal(slot.Name)}, {(slot.ReserveWal ? "true" : "false")})", cancellationToken);
            return;
        }
        // A logical slot belongs to a database: create it from a connection to that database.
        await using var connection = await host.OpenDatabaseAsync(slot.Database!, cancellationToken);
        await ExecAsync(connection, $"select pg_create_logical_replication_slot({Literal(slot.Name)}, {Literal(slot.Plugin!)})", cancellationToken);
    }

    private static string RoleOptions(DesiredRole r) =>
        $"{(r.Login ? "LOGIN" : "NOLOGIN")} {(r.Replication ? "REPLICATION" : "NOREPLICATION")} {(r.Superuser ? "SUPERUSER" : "NOSUPERUSER")} CONNECTION LIMIT {r.ConnectionLimit}"
        + (r.ValidUntil is null ? "" : $" VALID UNTIL {Literal(r.ValidUntil)}");

    /// <summary>The SCRAM verifier, computed here: the cleartext never reaches the server or its logs.</summary>
    private static string PasswordClause(DesiredRole r, IHostSession host) =>
        r.Password is null ? "" : $" PASSWORD {Literal(Scram.NewVerifier(r.Password.Resolve(host.Environment)))}";

    private static async Task ExecAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        try
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e)
        {
            // The statement may hold a verifier: report the server's message, never the SQL.
            throw new PgStateException($"{e.SqlState}: {e.MessageText}");
        }
    }
}
