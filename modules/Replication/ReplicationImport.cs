using System.Text;
using Npgsql;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Replication;

/// <summary>
/// pgstate import for spec.roles and spec.slots: the roles that can log in or replicate (not the
/// predefined pg_* roles, not superusers unless asked), with a fromEnv placeholder where a password
/// is stored — never the password — and the replication slots (temporary ones are a session's own).
/// </summary>
public sealed partial class ReplicationModule : IImportingModule
{
    public IReadOnlyList<string> ImportSections => ["roles", "slots"];

    public int ImportOrder => 30;

    public IReadOnlyList<VerbParameter> ImportParameters =>
    [
        new VerbParameter("include-superusers", "Import superuser roles too (by default they are left to the DBA: a manifest that names postgres can change it).",
            VerbParameterKind.Flag),
    ];

    public async Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken)
    {
        var connection = context.Session.Connection;
        var fields = new List<ImportedField>();
        if (context.Wants("roles"))
        {
            var roles = new List<LiveRole>();
            await using (var cmd = new NpgsqlCommand(BoundReplication.RoleColumns + "where (r.rolcanlogin or r.rolreplication) and r.rolname !~ '^pg_' order by r.rolname", connection))
            await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    roles.Add(BoundReplication.ReadRole(reader));
                }
            }
            HashSet<string>? withPassword = null;
            if (context.Session.Server.IsSuperuser)
            {
                withPassword = new HashSet<string>(StringComparer.Ordinal);
                await using var cmd = new NpgsqlCommand("select rolname::text from pg_authid where rolpassword is not null", connection);
                await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    withPassword.Add(reader.GetString(0));
                }
            }
            var superusers = roles.Where(r => r.Superuser).Select(r => r.Name).ToList();
            if (superusers.Count > 0 && !context.Flag("include-superusers"))
            {
                context.Note($"roles: superuser role(s) not imported: {string.Join(", ", superusers)} (--include-superusers imports them)");
                roles.RemoveAll(r => r.Superuser);
            }
            var items = new List<YamlOutItem>();
            var variables = new HashSet<string>(StringComparer.Ordinal);
            foreach (var role in roles)
            {
                if (TextSafety.HasControl(role.Name))
                {
                    context.Note($"roles: the role \"{TextSafety.Printable(role.Name)}\" has a control character in its name, which no manifest field takes: not imported");
                    continue;
                }
                items.Add(RoleOut(role, withPassword, variables));
            }
            if (withPassword is null && items.Count > 0)
            {
                context.Note("roles: pg_authid is not readable (needs superuser): whether roles have passwords is unknown; add password: {fromEnv: …} where they do");
            }
            if (items.Count > 0)
            {
                fields.Add(new ImportedField(60, new YamlOutEntry("roles", new YamlOutSequence(items),
                    Above: ["roles that can log in or replicate; roles not listed here are left alone"])));
            }
        }
        if (context.Wants("slots"))
        {
            var slots = new List<LiveSlot>();
            await using (var cmd = new NpgsqlCommand(BoundReplication.SlotQuery(context.Session.Server.Major) + " where not temporary order by slot_name", connection))
            await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    slots.Add(BoundReplication.ReadSlot(reader));
                }
            }
            var items = slots.Select(s => new YamlOutItem(SlotOut(s), After: s.Active ? "active" : null)).ToList();
            if (items.Count > 0)
            {
                fields.Add(new ImportedField(70, new YamlOutEntry("slots", new YamlOutSequence(items))));
            }
        }
        return fields;
    }

    private static YamlOutItem RoleOut(LiveRole role, HashSet<string>? withPassword, HashSet<string> variables)
    {
        var entries = new List<YamlOutEntry>
        {
            new("name", YamlOut.String(role.Name)),
            new("login", YamlOut.Bool(role.Login)),
        };
        if (role.Replication)
        {
            entries.Add(new("replication", YamlOut.Bool(true)));
        }
        if (role.Superuser)
        {
            entries.Add(new("superuser", YamlOut.Bool(true)));
        }
        if (role.ConnectionLimit != -1)
        {
            entries.Add(new("connectionLimit", YamlOut.Int(role.ConnectionLimit)));
        }
        if (role.ValidUntil is { } until)
        {
            entries.Add(new("validUntil", YamlOut.String(until == DateTime.MaxValue ? "infinity"
                : ReplicationDiff.NormalizeTimestamp(new DateTimeOffset(DateTime.SpecifyKind(until, DateTimeKind.Utc))))));
        }
        var groups = role.MemberOf.Order(StringComparer.Ordinal).ToList();
        if (groups.Count > 0)
        {
            entries.Add(new("inRoles", new YamlOutSequence([.. groups.Select(g => new YamlOutItem(YamlOut.String(g)))], Flow: true)));
        }
        if (withPassword?.Contains(role.Name) == true)
        {
            var variable = PasswordVariable(role.Name, variables);
            entries.Add(new("password", new YamlOutMapping([new("fromEnv", YamlOut.String(variable)), new("update", YamlOut.String("on-create"))], Flow: true),
                Above: [$"the role has a password; pgstate never reads it back: set {variable} to it before plan and apply"]));
        }
        return new YamlOutItem(new YamlOutMapping(entries));
    }

    /// <summary>PGSTATE_PASSWORD_ + the role name in capitals, other characters as _ (a suffix keeps two roles apart).</summary>
    internal static string PasswordVariable(string role, HashSet<string> taken)
    {
        var sb = new StringBuilder("PGSTATE_PASSWORD_");
        foreach (var c in role.ToUpperInvariant())
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }
        var name = sb.ToString();
        for (var i = 2; !taken.Add(name); i++)
        {
            name = sb + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return name;
    }

    private static YamlOutMapping SlotOut(LiveSlot slot)
    {
        var entries = new List<YamlOutEntry> { new("name", YamlOut.String(slot.Name)), new("type", YamlOut.String(slot.Type)) };
        if (slot.Type == "logical")
        {
            entries.Add(new("plugin", YamlOut.String(slot.Plugin ?? "")));
            entries.Add(new("database", YamlOut.String(slot.Database ?? "")));
        }
        else if (slot.RetainedBytes is null)
        {
            entries.Add(new("reserveWal", YamlOut.Bool(false)));
        }
        return new YamlOutMapping(entries, Flow: true);
    }
}
