using System.Text.RegularExpressions;
using PgState.Tests.Infrastructure;
using PgState.Tests.Snapshots;

namespace PgState.Tests.Packaging;

/// <summary>The man page (packaging/pgstate.1) keeps up with the command line: every command and option --help shows is in it.</summary>
public partial class ManPageTests
{
    [Fact]
    public async Task Man_page_names_every_command_and_option_the_cli_has()
    {
        var man = File.ReadAllText(Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "packaging", "pgstate.1")).Replace("\\-", "-", StringComparison.Ordinal);
        var missing = new List<string>();
        var seen = 0;
        async Task WalkAsync(string[] path)
        {
            var help = await CliRunner.RunAsync([.. path, "--help"]);
            Assert.True(help.ExitCode == 0, help.ToString());
            foreach (var option in Section(help.Stdout, "Options").SelectMany(l => OptionName().Matches(l)).Select(m => m.Value).Distinct())
            {
                seen++;
                if (!Regex.IsMatch(man, Regex.Escape(option) + @"(?![\w-])"))
                {
                    missing.Add($"pgstate {string.Join(' ', path)} {option}".Replace("  ", " ", StringComparison.Ordinal));
                }
            }
            foreach (var command in Section(help.Stdout, "Commands").Select(l => l.Trim().Split(' ')[0]))
            {
                string[] sub = [.. path, command];
                var subHelp = await CliRunner.RunAsync([.. sub, "--help"]);
                if (Section(subHelp.Stdout, "Commands").Any())
                {
                    await WalkAsync(sub);
                    continue;
                }
                seen++;
                if (!man.Contains($".B pgstate {string.Join(' ', sub)}", StringComparison.Ordinal))
                {
                    missing.Add($"pgstate {string.Join(' ', sub)} (no synopsis line)");
                }
                await WalkAsync(sub);
            }
        }
        await WalkAsync([]);
        Assert.True(seen > 40, $"only {seen} commands and options found in --help: the help format changed?");
        Assert.True(missing.Count == 0, "packaging/pgstate.1 does not mention: " + string.Join(", ", missing));
    }

    /// <summary>The lines of a help section ("Options:", "Commands:") up to the next blank line.</summary>
    private static IEnumerable<string> Section(string help, string title) =>
        help.Split('\n').SkipWhile(l => l.TrimEnd() != title + ":").Skip(1).TakeWhile(l => l.Trim().Length > 0);

    /// <summary>Long option names at the start of a help line (before the description).</summary>
    [GeneratedRegex(@"(?<=^\s+(?:-\S+, )*)--[a-z][a-z0-9-]*")]
    private static partial Regex OptionName();
}
