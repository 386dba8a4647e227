using System.CommandLine;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>Turns the verbs modules contribute (hba test, backup run …) into commands; the CLI names no module type.</summary>
internal static class VerbCommands
{
    public static IEnumerable<Command> Build(IOContext io, HostWorkflow workflow, IEnumerable<Verb> verbs)
    {
        var roots = new Dictionary<string, Command>(StringComparer.Ordinal);
        foreach (var verb in verbs)
        {
            var parent = roots.TryGetValue(verb.Path[0], out var existing) ? existing : roots[verb.Path[0]] = new Command(verb.Path[0], GroupDescription(verb.Path[0]));
            if (verb.Path.Count == 1)
            {
                // A verb named by its group alone (restore NAME --to DIR beside restore drill NAME): the group command runs it.
                Configure(parent, io, workflow, verb);
                parent.Description = verb.Description;
                continue;
            }
            for (var i = 1; i < verb.Path.Count - 1; i++)
            {
                var next = parent.Subcommands.FirstOrDefault(c => c.Name == verb.Path[i]);
                if (next is null)
                {
                    next = new Command(verb.Path[i]);
                    parent.Add(next);
                }
                parent = next;
            }
            parent.Add(Make(io, workflow, verb));
        }
        return roots.Values;
    }

    private static string GroupDescription(string name) => name switch
    {
        "hba" => "pg_hba.conf tools.",
        "backup" => "Base backups declared in spec.backups.",
        "restore" => "Restore drills and restores of spec.backups.",
        _ => name,
    };

    private static Command Make(IOContext io, HostWorkflow workflow, Verb verb)
    {
        var command = new Command(verb.Path[^1], verb.Description);
        Configure(command, io, workflow, verb);
        return command;
    }

    private static void Configure(Command command, IOContext io, HostWorkflow workflow, Verb verb)
    {
        var getters = new List<(string Name, Func<ParseResult, object?> Get)>();
        foreach (var p in verb.Parameters)
        {
            switch (p.Kind)
            {
                case VerbParameterKind.Argument:
                    var argument = new Argument<string>(p.HelpName ?? p.Name.ToUpperInvariant()) { Description = p.Description };
                    command.Add(argument);
                    getters.Add((p.Name, r => r.GetValue(argument)));
                    break;
                case VerbParameterKind.Flag:
                    var flag = new Option<bool>("--" + p.Name) { Description = p.Description };
                    command.Add(flag);
                    getters.Add((p.Name, r => r.GetValue(flag)));
                    break;
                default:
                    var option = new Option<string?>("--" + p.Name) { Description = p.Description, Required = p.Required, HelpName = p.HelpName };
                    if (p.Default is { } d)
                    {
                        option.DefaultValueFactory = _ => d;
                    }
                    if (p.Allowed is { } allowed)
                    {
                        option.AcceptOnlyFromAmong([.. allowed]);
                    }
                    command.Add(option);
                    getters.Add((p.Name, r => r.GetValue(option)));
                    break;
            }
        }
        Argument<string[]>? files = null;
        Option<string[]>? manifests = null;
        if (verb.Manifests == VerbManifests.Files)
        {
            files = CommonOptions.Files();
            command.Add(files);
        }
        else if (verb.Manifests == VerbManifests.ManifestOption)
        {
            manifests = new Option<string[]>("--manifest") { HelpName = "FILE", Description = "Manifest file(s) that declare it.", Required = true, AllowMultipleArgumentsPerToken = true };
            command.Add(manifests);
        }
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        if (verb.Manifests != VerbManifests.None)
        {
            command.Add(host);
            command.Add(port);
            command.Add(user);
        }
        command.SetAction(async (result, ct) =>
        {
            var values = getters.ToDictionary(g => g.Name, g => g.Get(result), StringComparer.Ordinal);
            IReadOnlyList<VerbHost> hosts = [];
            var paths = files is not null ? result.GetValue(files)! : manifests is not null ? result.GetValue(manifests)! : null;
            if (paths is not null)
            {
                var loaded = workflow.Load(paths, new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user)), secrets: SecretCheck.Skip);
                if (loaded is null)
                {
                    return ExitCodes.Error;
                }
                hosts = [.. loaded.Select(h => h.ForVerb())];
            }
            var context = new VerbContext(values, hosts,
                async (h, c) => await workflow.ConnectAsync(new Engine.Planning.BoundHost(h.Host, h.Modules, h.Facts, h.Paths), c),
                io.Output, io.Error, io.Environment, io.ErrorIsTerminal, io.OwnsProcess);
            return await verb.Run(context, ct);
        });
    }
}
