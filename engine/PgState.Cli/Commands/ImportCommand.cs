using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>
/// pgstate import: reads a live host and writes the manifest of what is there, so that planning it
/// against the same host shows no changes. Each module writes its own fields (IImportingModule);
/// this command only connects, assembles the document in the examples' order, checks that it
/// validates, and lists on stderr (and at the end of the file) what no manifest field can say.
/// </summary>
internal sealed partial class ImportCommand(IOContext io, HostWorkflow workflow, IReadOnlyList<IModule> modules)
{
    public const string DefaultSchema = "/usr/share/pgstate/pgstate.schema.json";

    public sealed record Arguments(
        ConnectionSpec Connection, string? Name, string? DataDirectory, IReadOnlySet<string>? Sections, string Out, bool Check, string Schema,
        IReadOnlyDictionary<string, object?> Values);

    private IEnumerable<IImportingModule> Importers => modules.OfType<IImportingModule>().OrderBy(m => m.ImportOrder);

    public Command Build()
    {
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var database = new Option<string?>("--pg-database") { HelpName = "DB", Description = "Database to connect to (default postgres)." };
        var name = new Option<string?>("--name") { HelpName = "NAME", Description = "metadata.name (default: the host that pgstate's own files here name, else this machine's name)." };
        var dataDirectory = new Option<string?>("--data-directory") { HelpName = "DIR", Description = "spec.dataDirectory (default: the server's data_directory)." };
        var allSections = Importers.SelectMany(m => m.ImportSections).ToList();
        var sections = new Option<string?>("--sections") { HelpName = "LIST", Description = $"Comma-separated spec fields to import (default all): {string.Join(",", allSections)}." };
        var output = new Option<string>("--out") { HelpName = "FILE", Required = true, Description = "Where to write the manifest (- for stdout)." };
        var check = new Option<bool>("--check") { Description = "Then plan the written manifest against the host: exit 1 unless it shows no changes." };
        var schema = new Option<string>("--schema") { HelpName = "URL", Description = $"The schema the yaml-language-server line names (default {DefaultSchema}).", DefaultValueFactory = _ => DefaultSchema };
        var command = new Command("import", "Write the manifest of a running host (settings, pg_hba rules, roles, slots, file contexts, directories, backup schedules): " +
            "planned against the same host it shows no changes. Never writes a password; what no manifest field can say is listed. Exit 0 ok, 1 error.")
        {
            host, port, user, database, name, dataDirectory, sections, output, check, schema,
        };
        var getters = new List<(string Name, Func<ParseResult, object?> Get)>();
        foreach (var p in Importers.SelectMany(m => m.ImportParameters))
        {
            if (p.Kind == VerbParameterKind.Flag)
            {
                var flag = new Option<bool>("--" + p.Name) { Description = p.Description };
                command.Add(flag);
                getters.Add((p.Name, r => r.GetValue(flag)));
            }
            else
            {
                var option = new Option<string?>("--" + p.Name) { Description = p.Description, HelpName = p.HelpName };
                command.Add(option);
                getters.Add((p.Name, r => r.GetValue(option)));
            }
        }
        command.SetAction((result, ct) =>
        {
            var connection = new ConnectionSpec(result.GetValue(host) ?? "/var/run/postgresql", result.GetValue(port) ?? 5432, result.GetValue(user) ?? "postgres",
                result.GetValue(database) ?? "postgres", null, 10);
            IReadOnlySet<string>? wanted = result.GetValue(sections) is { } list
                ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal)
                : null;
            return RunAsync(new Arguments(connection, result.GetValue(name), result.GetValue(dataDirectory), wanted, result.GetValue(output)!, result.GetValue(check),
                result.GetValue(schema)!, getters.ToDictionary(g => g.Name, g => g.Get(result), StringComparer.Ordinal)), ct);
        });
        return command;
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var known = Importers.SelectMany(m => m.ImportSections).ToList();
        if (args.Sections?.FirstOrDefault(s => !known.Contains(s)) is { } unknown)
        {
            io.Error.WriteLine($"pgstate: error: --sections: '{unknown}' is not a section import writes ({string.Join(", ", known)})");
            return ExitCodes.Error;
        }
        if (args.Name is { } n && !HostName().IsMatch(n))
        {
            io.Error.WriteLine($"pgstate: error: --name '{n}' is not a host name a manifest takes (letters, digits, . _ -; 63 at most)");
            return ExitCodes.Error;
        }
        if (args.DataDirectory is { } dd && !dd.StartsWith('/'))
        {
            io.Error.WriteLine("pgstate: error: --data-directory must be an absolute path");
            return ExitCodes.Error;
        }
        Timings.Mark("import start");
        io.Error.WriteLine($"pgstate: connecting to {args.Connection.Describe()}");
        await using var session = await HostSession.OpenAsync(args.Connection, ProcessRunner.Default, io.Environment, cancellationToken);
        Timings.Mark("connected");
        var hostName = args.Name ?? Importers.Select(m => m.HostNameHints(session)).FirstOrDefault(h => h.Count > 0)?[0] ?? MachineName();
        var context = new ImportContext(session, hostName, args.Sections, args.Values, session.Facts, path =>
        {
            var result = new ManifestLoader(io.Environment).Load([path]);
            return (result.Hosts, result.Diagnostics.HasErrors
                ? result.Diagnostics.Items.First(d => d.Severity == Engine.Diagnostics.Severity.Error).Message
                : null);
        });
        var fields = new List<ImportedField>();
        foreach (var importer in Importers)
        {
            fields.AddRange(await importer.ImportAsync(context, cancellationToken));
            Timings.Mark($"imported {string.Join(",", importer.ImportSections)}");
        }
        var text = Document(args, session, hostName, fields, context.Notes);

        // The written manifest must validate (schema, every module's own checks): check it before it replaces anything.
        var scratch = Path.Combine(Path.GetTempPath(), $"pgstate-import-{Environment.ProcessId}-{Guid.NewGuid():N}.yaml");
        IReadOnlyList<Engine.Planning.BoundHost>? loaded;
        try
        {
            await File.WriteAllTextAsync(scratch, text, cancellationToken);
            loaded = workflow.Load([scratch], ConnectionOverride.None, secrets: SecretCheck.Skip);
        }
        finally
        {
            File.Delete(scratch);
        }
        if (loaded is null)
        {
            io.Error.WriteLine("pgstate: error: the imported manifest does not validate (the problems are above); nothing was written");
            return ExitCodes.Error;
        }
        Timings.Mark("validated");
        if (args.Out == "-")
        {
            io.Output.Write(text);
        }
        else
        {
            await HostFiles.WriteAtomicAsync(args.Out, text, cancellationToken);
            io.Error.WriteLine($"pgstate: manifest of host '{hostName}' written to {args.Out}");
        }
        foreach (var note in context.Notes)
        {
            io.Error.WriteLine("pgstate: not represented: " + note);
        }
        if (!args.Check)
        {
            return ExitCodes.Ok;
        }
        if (args.Out != "-" && workflow.Load([args.Out], ConnectionOverride.None, secrets: SecretCheck.Skip) is { } written)
        {
            loaded = written; // the plan's messages name the file the operator has, not the scratch copy
        }
        var bound = loaded[0];
        await using var planSession = await workflow.ConnectAsync(bound, cancellationToken);
        if (await workflow.PlanAsync(bound, planSession, forApply: false, cancellationToken) is not { } plan)
        {
            return ExitCodes.Error;
        }
        if (plan.HasWork || plan.Changes.Count > 0)
        {
            io.Error.Write(PlanRenderer.Render([plan], OutputFormat.Text, colour: false));
            io.Error.WriteLine($"pgstate: error: planned against {args.Connection.Describe()}, the imported manifest is not clean ({plan.SummaryLine})");
            return ExitCodes.Error;
        }
        io.Error.WriteLine("pgstate: checked: planned against the same host, the imported manifest shows no changes");
        return ExitCodes.Ok;
    }

    private static string Document(Arguments args, IHostSession session, string hostName, List<ImportedField> fields, IReadOnlyList<string> notes)
    {
        var c = args.Connection;
        var connection = new List<YamlOutEntry> { new("host", YamlOut.String(c.Host)), new("port", YamlOut.Int(c.Port)), new("user", YamlOut.String(c.User)) };
        if (c.Database != "postgres")
        {
            connection.Add(new("database", YamlOut.String(c.Database)));
        }
        var spec = new List<YamlOutEntry> { new("connection", new YamlOutMapping(connection, Flow: true)) };
        var dataDirectory = args.DataDirectory ?? (session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : null);
        if (dataDirectory is not null)
        {
            spec.Add(new("dataDirectory", YamlOut.String(dataDirectory)));
        }
        spec.Add(new("restart", new YamlOutMapping([new("policy", YamlOut.String("never"))], Flow: true),
            After: "import cannot tell how this server is restarted: allowed + service: NAME lets apply do it"));
        spec.AddRange(fields.OrderBy(f => f.Order).Select(f => f.Entry));
        var root = new YamlOutMapping(
        [
            new("apiVersion", YamlOut.String("pgstate/v1")),
            new("kind", YamlOut.String("PostgresHost")),
            new("metadata", new YamlOutMapping([new("name", YamlOut.String(hostName))], Flow: true)),
            new("spec", new YamlOutMapping(spec)),
        ]);
        var sb = new StringBuilder();
        sb.Append("# yaml-language-server: $schema=").Append(args.Schema).Append('\n');
        sb.Append(YamlEmitter.Comment($"Written by `pgstate import` from {c.Describe()} (PostgreSQL {session.Server.Version}); planned against that host it shows no changes.")).Append('\n');
        sb.Append(YamlEmitter.Write(root));
        if (notes.Count > 0)
        {
            sb.Append("# Not represented in this manifest (pgstate leaves these as they are):\n");
            foreach (var note in notes)
            {
                sb.Append(YamlEmitter.Comment("- " + note)).Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>This machine's short name, made into a host name a manifest takes.</summary>
    private static string MachineName()
    {
        var name = new string([.. Environment.MachineName.Split('.')[0].Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-' ? ch : '-')]).Trim('-', '_');
        return name.Length == 0 ? "db" : name.Length > 63 ? name[..63] : name;
    }

    [GeneratedRegex("^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")]
    private static partial Regex HostName();
}
